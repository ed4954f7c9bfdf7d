"""dlpipe's one training engine: Learner, callbacks, schedules, parameter groups, loaders, DDP.

    from dlpipe.train import Learner, Callback, make_loader, adamw, accuracy
"""
from dlpipe.train.callbacks import Callback, CancelFit, ProgressCallback, Recorder
from dlpipe.train.data import EpochSampler, make_loader, set_epoch
from dlpipe.train.distributed import ddp_launch_cmd, init_from_env, is_main, launch
from dlpipe.train.learner import Learner, to_device
from dlpipe.train.metrics import accuracy, accuracy_thresh, error_rate
from dlpipe.train.param_groups import (adamw, check_splitter, default_splitter, discriminative, even_mults,
                                       lr_per_group, sgd)
from dlpipe.train.schedules import SCHEDULES, const, make_schedule, one_cycle, sgdr, stlr

__all__ = [
    "Callback", "CancelFit", "ProgressCallback", "Recorder", "EpochSampler", "make_loader", "set_epoch",
    "ddp_launch_cmd", "init_from_env", "is_main", "launch", "Learner", "to_device", "accuracy", "accuracy_thresh",
    "error_rate", "adamw", "check_splitter", "default_splitter", "discriminative", "even_mults",
    "lr_per_group", "sgd", "SCHEDULES", "const", "make_schedule", "one_cycle", "sgdr", "stlr",
]
