"""Peer: fastai 2.8.12 ``Learner.fit_one_cycle`` training dlpipe's CIFAR-10 Darknet.

Usage: python bench/peers/fastai_cifar.py SRC EPOCHS
The network and the per-image pipeline are dlpipe's own (imported from src/: ``darknet``,
``ImageArrayDataset``), so both sides do the same math; fastai supplies the DataLoaders, the
Learner, its callbacks (recorder, progress, one-cycle scheduler, channels-last input) and SGD with
decoupled weight decay. Prints one JSON line (images/s over the last epoch's training part).
"""
import json
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import torch                                                            # noqa: E402
import torch.nn.functional as F                                         # noqa: E402
from fastai.callback.core import Callback                               # noqa: E402
from fastai.callback.schedule import fit_one_cycle                      # noqa: E402,F401 (patches Learner)
from fastai.data.core import DataLoaders                                # noqa: E402
from fastai.data.load import DataLoader                                 # noqa: E402
from fastai.learner import Learner                                      # noqa: E402
from fastai.metrics import accuracy                                     # noqa: E402
from fastai.optimizer import SGD                                        # noqa: E402

from dlpipe.models.darknet import DarknetConfig, darknet               # noqa: E402
from dlpipe.tasks.cifar.train import load_arrays                        # noqa: E402
from dlpipe.vision.transforms import ImageArrayDataset, channel_stats  # noqa: E402

NF, LAYERS, BS, LR, WD = 16, (1, 2, 2), 128, 0.2, 5e-3


class ChannelsLast(Callback):
    """NHWC input, as dlpipe's channels_last collate does."""
    order = 5

    def before_batch(self):
        self.learn.xb = (self.xb[0].contiguous(memory_format=torch.channels_last),)


class TrainTimer(Callback):
    """Seconds of each epoch's training part (validation excluded)."""
    order = 40

    def before_fit(self):
        self.times = []

    def before_epoch(self):
        self.t0 = time.perf_counter()

    def before_validate(self):
        self.times.append(time.perf_counter() - self.t0)


def main():
    src, epochs = Path(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(2)
    torch.manual_seed(0)
    a = load_arrays(src)
    mean, std = channel_stats(a["train_images"])
    train_ds = ImageArrayDataset(a["train_images"], a["train_labels"], 3, mean, std, pad=4, flip=True)
    test_ds = ImageArrayDataset(a["test_images"], a["test_labels"], 3, mean, std)
    dls = DataLoaders(DataLoader(train_ds, bs=BS, shuffle=True, drop_last=True, num_workers=0),
                      DataLoader(test_ds, bs=BS * 2, num_workers=0), device="cpu")
    net = darknet(DarknetConfig(in_ch=3, nf=NF, layers=LAYERS, n_classes=10)).to(memory_format=torch.channels_last)
    timer = TrainTimer()
    learn = Learner(dls, net, loss_func=partial(F.cross_entropy, label_smoothing=0.1),
                    opt_func=partial(SGD, mom=0.95, wd=WD, decouple_wd=True), metrics=[accuracy],
                    cbs=[ChannelsLast(), timer])
    with learn.no_logging():
        learn.fit_one_cycle(epochs, LR, div=25.0, div_final=1e4, pct_start=0.25, moms=(0.95, 0.85, 0.95))
    n = len(train_ds) // BS * BS                                          # drop_last
    print(json.dumps({"epoch_s": timer.times, "n_train": n, "images_per_s": n / timer.times[-1],
                      "accuracy": float(learn.recorder.values[-1][2])}), flush=True)


if __name__ == "__main__":
    main()
