r"""One training loop for every likelihood model in the repository.

Minimises a mean negative log-likelihood :math:`\mathcal{L}(\theta) = -\frac{1}{B}\sum_i
\log q_\theta(x_i \mid c_i)` with Adam on shuffled mini-batches, tracks the validation NLL
after each epoch, keeps the best state (early stopping with ``patience``) and stops with a
clear message, restoring that best state, if a loss turns NaN or infinite.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

LossFn = Callable[..., torch.Tensor]


class NonFiniteLossError(RuntimeError):
    """Raised inside the loop when a loss is NaN/inf; the loop restores the best state."""


@dataclass
class TrainHistory:
    """Losses of one training run (nats per sample), one entry per validation evaluation."""

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.inf
    stopped: str = "max_epochs"
    wall_s: float = 0.0
    steps: int = 0
    best_step: int = 0

    def to_dict(self) -> dict:
        return {
            "train": self.train,
            "val": self.val,
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "stopped": self.stopped,
            "wall_s": self.wall_s,
            "steps": self.steps,
            "best_step": self.best_step,
        }


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random train/validation index split, reproducible from ``seed``."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(val_fraction * n))
    return perm[n_val:], perm[:n_val]


@torch.no_grad()
def _mean_loss(loss_fn: LossFn, tensors: Sequence[torch.Tensor], batch_size: int) -> float:
    n = len(tensors[0])
    total = 0.0
    for start in range(0, n, batch_size):
        batch = [t[start : start + batch_size] for t in tensors]
        total += loss_fn(*batch).item() * len(batch[0])
    return total / n


def _index_batches(
    n: int, batch_size: int, drop_last: bool, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """Endless mini-batch indices, one fresh permutation per pass over the ``n`` rows.

    ``drop_last`` skips each pass's final partial batch (all rows form one batch if
    ``n < batch_size``); without it every row is used once per pass.
    """
    stop = n - batch_size + 1 if drop_last and n >= batch_size else n
    while True:
        perm = torch.randperm(n, generator=generator)
        for start in range(0, max(stop, 1), batch_size):
            yield perm[start : start + batch_size]


def train_likelihood(
    model: nn.Module,
    loss_fn: LossFn,
    train_tensors: Sequence[torch.Tensor],
    val_tensors: Sequence[torch.Tensor],
    *,
    epochs: int = 100,
    batch_size: int = 512,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int = 10,
    max_seconds: float | None = None,
    grad_clip: float | None = 5.0,
    steps: int | None = None,
    eval_every: int | None = None,
    drop_last: bool = True,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
) -> TrainHistory:
    """Train ``model`` by minimising ``loss_fn(*batch)`` (a mean NLL); return its history.

    Two budgets: ``epochs`` passes over the training set (the validation NLL is evaluated after
    each), or, when ``steps`` is given, that many optimiser steps with the validation NLL
    evaluated every ``eval_every`` steps (default: one pass). ``patience`` and the entries of the
    history count evaluations, so in epoch mode they are epochs.

    Args:
        model: module whose parameters are optimised; left in its best-validation state.
        loss_fn: called as ``loss_fn(*batch)`` on slices of the tensors, returns a scalar.
        train_tensors, val_tensors: equally long tensors (e.g. ``(x,)`` or ``(x, context)``).
        epochs: maximum number of passes over the training set (ignored if ``steps`` is set).
        batch_size: mini-batch size.
        lr: Adam learning rate, decayed by a cosine schedule over the budget (epochs or steps).
        patience: stop after this many evaluations without a validation improvement.
        max_seconds: optional wall-clock budget; training stops after the evaluation that
            exceeds it.
        grad_clip: global gradient-norm clip (``None`` disables it).
        steps, eval_every: the optimiser-step budget and the evaluation interval.
        drop_last: skip each pass's final partial batch (without it no row goes unused).
        seed: seeds the shuffling generator (model initialisation is the caller's).
        progress: show a tqdm bar per evaluation.

    Raises:
        NonFiniteLossError: never escapes; a NaN/inf loss ends training with ``stopped`` set to
            ``"non_finite"`` and the best state restored. If no evaluation finished it is
            re-raised.
    """
    n = len(train_tensors[0])
    per_pass = len(range(0, max(n - batch_size + 1 if drop_last and n >= batch_size else n, 1),
                         batch_size))  # fmt: skip
    if steps is None:
        per_round, rounds, schedule_length = per_pass, epochs, max(epochs, 1)
        stopped_at_budget = "max_epochs"
    else:
        per_round = eval_every or per_pass
        rounds, schedule_length = math.ceil(steps / per_round), max(steps, 1)
        stopped_at_budget = "max_steps"
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=schedule_length)
    batches = _index_batches(n, batch_size, drop_last, torch.Generator().manual_seed(seed))
    history = TrainHistory(stopped=stopped_at_budget)
    best_state = copy.deepcopy(model.state_dict())
    start_time = time.perf_counter()
    taken = 0
    bar = tqdm(range(rounds), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        running, seen = 0.0, 0
        try:
            for _ in range(per_round if steps is None else min(per_round, steps - taken)):
                idx = next(batches)
                loss = loss_fn(*(t[idx] for t in train_tensors))
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(
                        f"{desc}: loss became {loss.item()} at evaluation round {epoch}, step "
                        f"{taken}; restoring the best state (round {history.best_epoch})"
                    )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimiser.step()
                taken += 1
                if steps is not None:
                    scheduler.step()
                running += loss.item() * len(idx)
                seen += len(idx)
        except NonFiniteLossError as err:
            if history.best_epoch < 0:
                raise
            print(err)
            history.stopped = "non_finite"
            break
        if steps is None:
            scheduler.step()
        model.eval()
        val = _mean_loss(loss_fn, val_tensors, max(batch_size, 8192))
        history.train.append(running / max(seen, 1))
        history.val.append(val)
        history.steps = taken
        if not math.isfinite(val):
            print(f"{desc}: validation loss {val} at round {epoch}; restoring best state")
            history.stopped = "non_finite"
            break
        if val < history.best_val:
            history.best_val, history.best_epoch, history.best_step = val, epoch, taken
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(train=f"{history.train[-1]:.4f}", val=f"{val:.4f}")
        if epoch - history.best_epoch >= patience:
            history.stopped = "early_stopping"
            break
        if max_seconds is not None and time.perf_counter() - start_time > max_seconds:
            history.stopped = "time_budget"
            break
    model.load_state_dict(best_state)
    model.eval()
    history.wall_s = time.perf_counter() - start_time
    return history
