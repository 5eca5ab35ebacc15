r"""One-class per-image anomaly scores, fitted on observed images only, and their calibration.

A score s(x) is larger for images less like the observed ones. Three families beside GANomaly:

* **complexity-corrected** (Serrà et al. 2020): likelihood-type scores track how much structure
  an image holds rather than whether it is typical. With L(x) the image's compressed length
  (:func:`astrogen.image_properties.compressed_bits`), the corrected score is the part of
  log s(x) that L does not explain on observed images:
  :math:`s_c(x) = \log s(x) - (a + b\,L(x))`, (a, b) by least squares on observed images;
* **feature density**: a zuko flow q over measured properties (:class:`FeatureDensity`); the
  score is −log q(f(x)), rows with a non-finite property score +∞;
* **contrastive embedding** (SimCLR, Chen et al. 2020): an encoder h trained so that two
  augmentations of one image that leave its physics unchanged (90° rotations, flips, shifts of
  a few pixels, a redraw of the 8-bit quantisation) map close together and other images far
  (NT-Xent loss, temperature τ); the score is the mean cosine distance 1 − h·h' to the k nearest
  observed embeddings (:class:`EmbeddingScorer`).

**Calibration.** A per-image p-value is the upper-tail percentile among held-out observed
reference scores r₁…r_n, :math:`p(x) = (1 + \#\{r_j ≥ s(x)\})/(n + 1)`, uniform (on its grid) for
an observed image not in the reference. :func:`leave_one_out_p` gives the reference images
their own p-values the same way (each left out of its reference), so a combination of families
can be calibrated on the same images. **Combination** (Fisher): −2 Σ_f log p_f(x).

Every score is computed in eval mode, one row at a time in effect: an image's score and
p-value do not depend on the other images of its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from astrogen.models.flows import DensityEstimator, fit_density
from astrogen.models.ganomaly import _encoder
from astrogen.train import train_likelihood

# ---------------------------------------------------------------------------------------------
# Calibration and combination


def upper_p(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """p(x) = (1 + #{r ≥ s(x)}) / (n + 1) for scores (N,) against a reference (n,)."""
    ref = np.sort(np.asarray(reference, float))
    s = np.asarray(scores, float)
    above = len(ref) - np.searchsorted(ref, s, side="left")
    return (1 + above) / (len(ref) + 1)


def leave_one_out_p(reference: np.ndarray) -> np.ndarray:
    """Each reference score's p-value against the other n − 1: (1 + #{j ≠ i: r_j ≥ r_i}) / n."""
    ref = np.asarray(reference, float)
    ordered = np.sort(ref)
    above = len(ref) - np.searchsorted(ordered, ref, side="left") - 1
    return (1 + above) / len(ref)


def fisher_statistic(p_values: np.ndarray) -> np.ndarray:
    """−2 Σ_f log p_f per row of (N, F) p-values: large when any family is extreme."""
    return -2 * np.log(np.asarray(p_values, float)).sum(1)


# ---------------------------------------------------------------------------------------------
# Complexity correction


def fit_complexity_correction(scores: np.ndarray, complexity: np.ndarray) -> dict[str, float]:
    """(a, b) of log s = a + b L by least squares on observed images; with the correlation."""
    log_s = np.log(np.asarray(scores, float))
    L = np.asarray(complexity, float)
    b, a = np.polyfit(L, log_s, 1)
    return {"intercept": float(a), "slope": float(b),
            "correlation": float(np.corrcoef(L, log_s)[0, 1])}  # fmt: skip


def complexity_corrected(
    scores: np.ndarray, complexity: np.ndarray, coefficients: dict[str, float]
) -> np.ndarray:
    """s_c = log s − (a + b L) (module docstring), (N,)."""
    a, b = coefficients["intercept"], coefficients["slope"]
    return np.log(np.asarray(scores, float)) - (a + b * np.asarray(complexity, float))


# ---------------------------------------------------------------------------------------------
# Feature density


class FeatureDensity:
    """−log q of measured properties under a flow fitted on observed images.

    Args:
        estimator: the flow over the transformed columns (:func:`fit_feature_density`).
        columns: property names, in the flow's order; ``log_columns`` enter as log₁₀.
    """

    def __init__(
        self, estimator: DensityEstimator, columns: Sequence[str], log_columns: Sequence[str]
    ) -> None:
        self.estimator, self.columns, self.log_columns = estimator, list(columns), list(log_columns)

    def transform(self, table: pd.DataFrame) -> np.ndarray:
        """(N, D) float64 inputs of the flow (log₁₀ of ``log_columns``)."""
        x = table[self.columns].to_numpy(np.float64, copy=True)
        for j, c in enumerate(self.columns):
            if c in self.log_columns:
                with np.errstate(divide="ignore", invalid="ignore"):
                    x[:, j] = np.log10(x[:, j])
        return x

    @torch.no_grad()
    def log_density(self, table: pd.DataFrame) -> np.ndarray:
        """log q (N,) in the units of the transformed properties; −∞ for non-finite rows."""
        x = self.transform(table)
        ok = np.isfinite(x).all(1)
        out = np.full(len(x), -np.inf)
        if ok.any():
            self.estimator.eval()
            out[ok] = self.estimator.log_prob(torch.as_tensor(x[ok])).numpy()
        return out

    def score(self, table: pd.DataFrame) -> np.ndarray:
        """−log q (N,): the anomaly score."""
        return -self.log_density(table)


def fit_feature_density(
    table: pd.DataFrame,
    columns: Sequence[str],
    log_columns: Sequence[str] = (),
    *,
    transforms: int = 4,
    hidden: int = 64,
    epochs: int = 60,
    batch_size: int = 256,
    lr: float = 2e-3,
    patience: int = 10,
    seed: int = 0,
) -> tuple[FeatureDensity, int]:
    """A MAF (:func:`astrogen.models.flows.fit_density`) over ``columns`` of observed images;
    rows with a non-finite property are left out. Returns the density and how many rows it
    dropped."""
    density = FeatureDensity(None, columns, log_columns)  # type: ignore[arg-type]
    x = density.transform(table)
    ok = np.isfinite(x).all(1)
    density.estimator = fit_density(
        torch.as_tensor(x[ok]), family="maf", transforms=transforms, hidden=(hidden, hidden),
        epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
        progress=False,
    )  # fmt: skip
    density.estimator.eval()
    return density, int((~ok).sum())


# ---------------------------------------------------------------------------------------------
# Contrastive embedding


class ContrastiveEncoder(nn.Module):
    """h(x) (N, dim), unit-normalised, of images x (N, 3, 64, 64) in [−1, 1]; ``head`` is the
    projection g used only by the training loss."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        dim = config["dim"]
        self.body = _encoder(config["width"], dim)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    @torch.no_grad()
    def embed(self, x: np.ndarray | torch.Tensor, batch: int = 256) -> np.ndarray:
        """Unit-normalised h(x) (N, dim) in eval mode (BatchNorm statistics fixed)."""
        self.eval()
        x = torch.as_tensor(x, dtype=torch.float32)
        parts = [nn.functional.normalize(self(x[i : i + batch]), dim=1)
                 for i in range(0, len(x), batch)]  # fmt: skip
        return torch.cat(parts).double().numpy() if parts else np.empty((0, self.config["dim"]))


def augment(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """A random physics-preserving view of each image of x (N, 3, H, W) in [−1, 1]: one of the
    eight 90°-rotation/flip symmetries, a cyclic shift of up to ``max_shift`` pixels per axis
    (the stamp edge is sky), and the 8-bit quantisation redrawn (uniform ±½ level)."""
    n, _, h, w = x.shape
    k = torch.randint(0, 4, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x)
    for r in range(4):
        for f in (False, True):
            sel = (k == r) & (flip == f)
            if sel.any():
                v = torch.rot90(x[sel], r, (2, 3))
                out[sel] = v.flip(3) if f else v
    if max_shift > 0:
        dy = torch.randint(-max_shift, max_shift + 1, (n,), generator=generator)
        dx = torch.randint(-max_shift, max_shift + 1, (n,), generator=generator)
        iy = (torch.arange(h)[None, :] - dy[:, None]) % h
        ix = (torch.arange(w)[None, :] - dx[:, None]) % w
        rows = torch.arange(n)[:, None, None]
        out = out.permute(0, 2, 3, 1)[rows, iy[:, :, None], ix[:, None, :]].permute(0, 3, 1, 2)
    dither = (torch.rand(out.shape, generator=generator) - 0.5) * (2 / 255)
    return (out + dither).clamp(-1, 1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""SimCLR's loss: for each of the 2N views, −log of the softmax (over the other 2N − 1
    views, cosine similarity / τ) of its partner."""
    z = nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    n = len(z1)
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return nn.functional.cross_entropy(sim, partner)


def fit_contrastive(
    train: np.ndarray,
    val: np.ndarray,
    *,
    width: int = 16,
    dim: int = 32,
    epochs: int = 6,
    batch_size: int = 128,
    lr: float = 1e-3,
    temperature: float = 0.2,
    max_shift: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> ContrastiveEncoder:
    """Train a :class:`ContrastiveEncoder` on observed images (N, 3, 64, 64) in [−1, 1] with
    :func:`astrogen.train.train_likelihood` (Adam, cosine decay, the best held-out NT-Xent kept)."""
    torch.manual_seed(seed)
    model = ContrastiveEncoder({"width": width, "dim": dim})
    views = torch.Generator().manual_seed(seed + 1)

    def loss_fn(xb: torch.Tensor) -> torch.Tensor:
        a, b = augment(xb, views, max_shift), augment(xb, views, max_shift)
        return nt_xent(model.head(model(a)), model.head(model(b)), temperature)

    x_train = torch.as_tensor(train, dtype=torch.float32)
    x_val = torch.as_tensor(val, dtype=torch.float32)
    model.history = train_likelihood(
        model, loss_fn, (x_train,), (x_val,), epochs=epochs, batch_size=batch_size, lr=lr,
        patience=epochs, seed=seed, progress=progress, desc="SimCLR",
    )  # fmt: skip
    return model.eval()


class EmbeddingScorer:
    """Mean cosine distance to the k nearest observed embeddings (the ``bank``, (n, dim))."""

    def __init__(self, bank: np.ndarray, k: int = 5) -> None:
        if k > len(bank):
            raise ValueError(f"k = {k} neighbours but only {len(bank)} observed embeddings")
        self.bank, self.k = np.asarray(bank, np.float64), k

    def score(self, embeddings: np.ndarray, batch: int = 1024) -> np.ndarray:
        """(N,) mean of the k smallest 1 − h·b over the bank, for unit embeddings (N, dim)."""
        e = np.asarray(embeddings, np.float64)
        out = np.empty(len(e))
        for i in range(0, len(e), batch):
            d = 1 - e[i : i + batch] @ self.bank.T
            out[i : i + batch] = np.sort(np.partition(d, self.k - 1, 1)[:, : self.k], 1).mean(1)
        return out
