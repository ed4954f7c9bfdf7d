"""Teacher forcing for encoder-decoders, as a callback of the one Learner (lesson 11's decaying ``pr_force``)."""
from __future__ import annotations

from dlpipe.train import Callback


def teacher_forcing_prob(epoch: int, n_epochs: int, start: float, end: float) -> float:
    """Linear from ``start`` (first epoch) to ``end`` (last epoch)."""
    if n_epochs <= 1:
        return start
    return start + (end - start) * epoch / (n_epochs - 1)


class TeacherForcing(Callback):
    """Before each training epoch, set the model's ``pr_force`` from the schedule ``[start, end]``
    (one value: constant); validation and inference always feed the model's own predictions."""

    order = -5

    def __init__(self, schedule: list[float]):
        self.start, self.end = schedule[0], schedule[-1]

    def before_epoch(self):
        self.learn.model.pr_force = teacher_forcing_prob(self.learn.epoch, self.learn.n_epochs, self.start, self.end)
