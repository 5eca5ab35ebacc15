r"""Conditional Wasserstein GAN with gradient penalty (cWGAN-GP) for tabular emulation.

The generator maps noise z ~ N(0, I) (N, Z), conditions c (N, C) and true values t (N, T) to
outputs y (N, D); the critic scores (y, c, t). Both have one branch per input (a small MLP each,
leaky ReLU) merged into a trunk, as in the Balrog emulator of the seed. The critic minimises

.. math:: L_D = \mathbb E[D(\tilde y)] - \mathbb E[D(y)]
          + λ\, \mathbb E_{\hat y}\big[(\lVert \nabla_{\hat y} D(\hat y, c, t) \rVert_2 - 1)^2\big],

with :math:`\hat y = ε y + (1 - ε)\tilde y`, ε ~ U(0, 1) per row, the gradient taken with
respect to the outputs only (conditions are shared by real and fake rows); the generator
minimises :math:`-\mathbb E[D(\tilde y)]` (Gulrajani et al. 2017). The critic's value is not a
measure of sample quality, so :func:`fit_cwgan_gp` keeps the generator state with the best
validation score of a caller-supplied sample-quality metric.

All inputs and outputs are standardised inside the model with scalers stored as JSON in
``config`` (outputs by median and MAD, robust to heavy tails).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from astrogen.models.bijectors import Standardize


def _branch(n_in: int, width: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for k in range(layers):
        mods += [nn.Linear(n_in if k == 0 else width, width), nn.LeakyReLU(0.2)]
    return nn.Sequential(*mods)


class _Branched(nn.Module):
    """Branch MLPs per input block (N, n_k) → concatenation → trunk MLP → (N, out)."""

    def __init__(self, sizes: list[int], width: int, out: int, trunk_layers: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(_branch(n, width, 2) for n in sizes)
        self.trunk = nn.Sequential(
            _branch(width * len(sizes), 2 * width, trunk_layers), nn.Linear(2 * width, out)
        )

    def forward(self, *blocks: torch.Tensor) -> torch.Tensor:
        return self.trunk(torch.cat([b(x) for b, x in zip(self.branches, blocks, strict=True)], -1))


class ConditionalWGAN(nn.Module):
    """Generator and critic of a cWGAN-GP; ``sample(c, t)`` draws one output per row.

    Args:
        config: ``noise_dim`` Z, ``conditions`` C, ``truths`` T, ``outputs`` D, ``width``,
            ``trunk_layers``, and the JSON scalers ``c_scaler``, ``t_scaler``, ``y_scaler``.
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        z, c, t, d = (config[k] for k in ("noise_dim", "conditions", "truths", "outputs"))
        width, trunk = config["width"], config["trunk_layers"]
        self.generator = _Branched([z, c, t], width, d, trunk)
        self.critic = _Branched([d, c, t], width, 1, trunk)
        self.c_norm = Standardize.from_dict(config["c_scaler"])
        self.t_norm = Standardize.from_dict(config["t_scaler"])
        self.y_norm = Standardize.from_dict(config["y_scaler"])

    def normalise(self, c, t) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised float32 conditions and truths (on the model's device)."""
        device = next(self.parameters()).device
        c = torch.as_tensor(np.asarray(c), dtype=torch.float64, device=device)
        t = torch.as_tensor(np.asarray(t), dtype=torch.float64, device=device)
        return self.c_norm(c)[0].float(), self.t_norm(t)[0].float()

    def generate(
        self, c: torch.Tensor, t: torch.Tensor, generator=None, chunk: int | None = None
    ) -> torch.Tensor:
        """Standardised outputs (N, D) for standardised c (N, C), t (N, T).

        The noise is drawn for all N rows at once; ``chunk`` rows at a time then pass through the
        generator, so that its activations stay in the CPU cache (same outputs, faster).
        """
        # drawn on the CPU, so the noise is the same stream wherever the model runs
        z = torch.randn(len(c), self.config["noise_dim"], generator=generator).to(c.device)
        step = chunk or max(len(c), 1)
        return torch.cat(
            [self.generator(z[i : i + step], c[i : i + step], t[i : i + step])
             for i in range(0, max(len(c), 1), step)]
        )  # fmt: skip

    @torch.no_grad()
    def sample(self, c, t, batch: int = 65_536, generator=None, chunk: int = 4096) -> np.ndarray:
        """One emulated output per row in physical units, (N, D) float64."""
        self.eval()
        cn, tn = self.normalise(c, t)
        out = [
            self.y_norm.inverse(
                self.generate(cn[i : i + batch], tn[i : i + batch], generator, chunk).double()
            )
            for i in range(0, len(cn), batch)
        ]
        return torch.cat(out).cpu().numpy()


def _robust_scaler(y: np.ndarray) -> dict:
    """Median and 1.4826 × MAD per column as a JSON scaler: heavy tails (e.g. blends) must not
    squeeze the core of the distribution, where the 1-Lipschitz critic has to resolve widths."""
    median = np.median(y, axis=0)
    mad = 1.4826 * np.median(np.abs(y - median), axis=0)
    return {"mean": median.tolist(), "std": np.maximum(mad, 1e-12).tolist()}


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    r""":math:`\mathbb E[(\lVert\nabla_{\hat y} D(\hat y)\rVert_2 - 1)^2]` at
    :math:`\hat y = ε\,y_{\rm real} + (1-ε)\,y_{\rm fake}`; ``eps`` (N, 1), ``real``/``fake`` (N, D)."""
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def fit_cwgan_gp(
    y: np.ndarray,
    c: np.ndarray,
    t: np.ndarray,
    *,
    validation_score: Callable[[ConditionalWGAN], float],
    noise_dim: int = 8,
    width: int = 64,
    trunk_layers: int = 2,
    gp_weight: float = 10.0,
    critic_steps: int = 5,
    generator_steps: int = 10_000,
    batch_size: int = 256,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    eval_every: int = 500,
    ema_decay: float | None = 0.999,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> ConditionalWGAN:
    r"""Train a cWGAN-GP on outputs y (N, D) given conditions c (N, C) and truths t (N, T).

    Every ``eval_every`` generator steps ``validation_score(model)`` (lower is better, e.g. the
    W1 of emulated vs held-out outputs) is computed and the best generator state is kept; the
    returned model carries ``.history`` (a dict of lists: step, score, critic loss, generator
    loss, Wasserstein estimate).

    With ``ema_decay`` β the scored and returned generator is the exponential moving average of
    the trained one's weights, :math:`\bar φ \leftarrow β \bar φ + (1 - β) φ` after every
    generator step (Yazıcı et al. 2019): the adversarial game makes the raw generator oscillate
    around a good solution, its average sits closer to it. ``None`` scores the raw generator.

    ``device`` is where it trains (``"cuda"`` on a GPU); every random number is drawn on the CPU,
    so the streams do not depend on it, and the returned model lives on the CPU.
    """
    torch.manual_seed(seed)
    arrays = [np.asarray(a, dtype=np.float64) for a in (y, c, t)]
    if len({len(a) for a in arrays}) != 1 or any(a.ndim != 2 for a in arrays):
        raise ValueError("y, c, t must be 2-D arrays with the same number of rows")
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("y, c, t must be finite")
    tensors = [torch.as_tensor(a) for a in arrays]
    config = {
        "noise_dim": noise_dim, "conditions": c.shape[1], "truths": t.shape[1],
        "outputs": y.shape[1], "width": width, "trunk_layers": trunk_layers,
        "c_scaler": Standardize(c.shape[1], tensors[1]).to_dict(),
        "t_scaler": Standardize(t.shape[1], tensors[2]).to_dict(),
        "y_scaler": _robust_scaler(arrays[0]),
    }  # fmt: skip
    model = ConditionalWGAN(config).to(device)
    yn = model.y_norm(tensors[0].to(device))[0].float()
    cn, tn = model.normalise(arrays[1], arrays[2])
    opt_d = torch.optim.Adam(model.critic.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=lr, betas=betas)
    rows = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {k: [] for k in ("step", "score", "critic", "gen", "w")}
    best, best_state, start = np.inf, None, time.perf_counter()
    averaged = copy.deepcopy(model.generator) if ema_decay is not None else model.generator
    bar = tqdm(range(1, generator_steps + 1), desc="cWGAN-GP", disable=not progress, mininterval=2)
    for step in bar:
        model.train()
        for _ in range(critic_steps):
            i = torch.randint(len(yn), (batch_size,), generator=rows).to(device)
            real, ci, ti = yn[i], cn[i], tn[i]
            with torch.no_grad():
                fake = model.generate(ci, ti)
            w = model.critic(real, ci, ti).mean() - model.critic(fake, ci, ti).mean()
            gp = gradient_penalty(lambda v, ci=ci, ti=ti: model.critic(v, ci, ti), real, fake,
                                  torch.rand(batch_size, 1).to(device))  # fmt: skip
            loss_d = -w + gp_weight * gp
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        i = torch.randint(len(yn), (batch_size,), generator=rows).to(device)
        loss_g = -model.critic(model.generate(cn[i], tn[i]), cn[i], tn[i]).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if ema_decay is not None:
            with torch.no_grad():
                for avg, p in zip(averaged.parameters(), model.generator.parameters(), strict=True):
                    avg.lerp_(p, 1 - ema_decay)
        if not (torch.isfinite(loss_d) and torch.isfinite(loss_g)):
            raise FloatingPointError(
                f"cWGAN-GP diverged at generator step {step} (non-finite loss)"
            )
        if step % eval_every == 0 or step == generator_steps:
            model.generator, trained = averaged, model.generator
            model.eval()
            score = float(validation_score(model))
            model.generator = trained
            for k, v in zip(
                history, (step, score, loss_d.item(), loss_g.item(), w.item()), strict=True
            ):
                history[k].append(v)
            if score < best:
                best, best_state = score, copy.deepcopy(averaged.state_dict())
            bar.set_postfix(score=f"{score:.4f}", best=f"{best:.4f}", w=f"{w.item():.3f}")
    model.generator.load_state_dict(best_state)
    model.cpu()
    history["best_step"] = history["step"][int(np.argmin(history["score"]))]
    history["wall_s"] = time.perf_counter() - start
    model.history = history
    return model.eval()
