"""dlpipe's one training engine: Learner, phases, callbacks, schedules, parameter groups, loaders, DDP.

    from dlpipe.train import Learner, Optim, Phase, make_learner, fit_and_save, predict
"""
from dlpipe.train.callbacks import Callback, CancelFit, EpochTimer, ProgressCallback, Recorder
from dlpipe.train.data import EpochSampler, make_loader, set_epoch
from dlpipe.core.launch import ddp_launch_cmd, launch
from dlpipe.train.distributed import init_from_env, is_main
from dlpipe.train.learner import Learner, Optim, RunSettings, to_device
from dlpipe.train.metrics import accuracy, accuracy_thresh, error_rate
from dlpipe.train.param_groups import (adamw, check_splitter, default_splitter, discriminative, even_mults,
                                       lr_per_group, sgd)
from dlpipe.train.phases import Phase, fit_phases
from dlpipe.train.predict import predict, predict_batches
from dlpipe.train.run import RunDirs, fingerprint, fit_and_save, make_learner
from dlpipe.train.schedules import SCHEDULES, const, make_schedule, one_cycle, sgdr, stlr

__all__ = [
    "Callback", "CancelFit", "EpochTimer", "ProgressCallback", "Recorder", "EpochSampler", "make_loader",
    "set_epoch", "ddp_launch_cmd", "init_from_env", "is_main", "launch", "Learner", "Optim", "RunSettings",
    "to_device", "accuracy", "accuracy_thresh", "error_rate", "adamw", "check_splitter", "default_splitter",
    "discriminative", "even_mults", "lr_per_group", "sgd", "Phase", "fit_phases", "predict", "predict_batches",
    "RunDirs", "fingerprint", "fit_and_save", "make_learner", "SCHEDULES", "const", "make_schedule",
    "one_cycle", "sgdr", "stlr",
]
