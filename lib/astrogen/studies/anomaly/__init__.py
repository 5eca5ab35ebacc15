r"""Study 4 pipeline: observed sky and simulation suites → GANomaly → ratings.

Images travel as 8-bit RGB (N, 3, 64, 64) ``uint8``, exactly what the seed's PNG cutouts hold;
the network sees them mapped to [−1, 1]. Classic morphology (:mod:`astrogen.morphology`) is
measured on the r-band flux image before the colour stretch, as a survey pipeline would.

Splits: the sky's train / validation / test images come from one stream, every suite from its
own (``[seed, 42, suite index]``), and the same stream is reused at every severity of a suite
(common random numbers), so severities differ only by their defect. Training sees only the
sky's train split; checkpoint selection and the score's normalisation only its validation split;
the held-out test split is what suites are compared with.

Configuration: :mod:`astrogen.studies.anomaly.configuration` (typed sections, profiles,
targets, artifact keys via :func:`key`). ``data.source`` ``None`` is the simulator; a folder in
the seed's layout or two plain folders (``observed/``, ``simulated/``) replaces it, keyed by
the folder's content. The one-class scores and the suite-level rating of notebook 45 live in
:mod:`astrogen.studies.anomaly.scoring`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from astrogen import morphology, paths, store
from astrogen.config import artifact_key
from astrogen.io.anomaly import folder_fingerprint, load_images, load_rating_folder
from astrogen.models.ganomaly import GANomaly, fit_ganomaly, fit_referee, percentile_scores
from astrogen.sims.anomaly import (
    PIXEL_SCALE,
    SUITES,
    ZERO_POINT,
    render_sky,
    render_suite,
    to_rgb,
)  # fmt: skip
from astrogen.studies.anomaly.configuration import ARTIFACTS, Config

STUDY = "anomaly"
SEVERITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
PHYSICAL = ("compact", "bulgy", "colours", "smooth", "particles")
NUISANCE = ("psf", "noise")
REFEREE_TEST_FRACTION = 0.2
R_BAND = 1
_SEP = "__"  # npz key separator: <set>__<column>


def key(cfg: Config, name: str, seed: int, **extra) -> dict:
    """The cache key of artifact ``name`` (:data:`configuration.ARTIFACTS`) under ``cfg``, ``seed``;
    a folder source adds its content fingerprint."""
    if cfg.data.source is not None and name in ("sky", "ganomaly", "feature_flow", "embedding"):
        extra["source"] = folder_fingerprint(cfg.data.source)
    return artifact_key(cfg, name, ARTIFACTS[name], seed=seed, **extra)


def to_pixels(images: np.ndarray) -> np.ndarray:
    """g, r, i nanomaggies (N, 3, H, W) → 8-bit RGB (N, 3, H, W) uint8, as in a PNG cutout."""
    return np.round(to_rgb(images) * 255).astype(np.uint8)


def to_network(pixels: np.ndarray) -> np.ndarray:
    """8-bit (or [0, 1] float) RGB → float32 in [−1, 1], the generator's tanh range."""
    x = np.asarray(pixels, np.float32)
    if np.asarray(pixels).dtype == np.uint8:
        x = x / 255
    return 2 * x - 1


def _measured(images: np.ndarray, truth: pd.DataFrame, progress: bool) -> dict[str, np.ndarray]:
    """Pixels plus truth and r-band morphology columns of one rendered set."""
    rows = [
        morphology.measure(img, PIXEL_SCALE, ZERO_POINT)
        for img in tqdm(images[:, R_BAND], desc="morphology", disable=not progress, mininterval=2)
    ]  # fmt: skip
    table = pd.concat([truth.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    out = {"pixels": to_pixels(images)}
    out.update({c: table[c].to_numpy(float) for c in table.columns})
    return out


def _flatten(sets: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {f"{name}{_SEP}{k}": v for name, arrays in sets.items() for k, v in arrays.items()}


def _unflatten(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        name, column = key.split(_SEP, 1)
        out.setdefault(name, {})[column] = value
    return out


def _as_set(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, pd.DataFrame]:
    table = pd.DataFrame({k: v for k, v in arrays.items() if k != "pixels"})
    return arrays["pixels"], table


def sky(
    cfg: Config, seed: int, progress: bool = True
) -> dict[str, tuple[np.ndarray, pd.DataFrame]]:
    """``{"train" | "val" | "test": (pixels (N, 3, 64, 64) uint8, table)}`` of the observed sky.

    ``cfg.data.source`` ``None`` renders (or loads the cached) simulated sky; the test table holds
    its truth and r-band morphology. Otherwise the source is a folder (:func:`real_sky`).
    """
    if cfg.data.source is not None:
        return real_sky(cfg.data.source, seed)
    d = cfg.data

    def build() -> dict[str, np.ndarray]:
        sizes = [d.n_train, d.n_val, d.n_test]
        images, truth = render_sky(sum(sizes), np.random.default_rng([seed, 41]))
        n_train, n_val, _ = sizes
        train, val = images[:n_train], images[n_train : n_train + n_val]
        test = _measured(images[n_train + n_val :], truth.iloc[n_train + n_val :], progress)
        return _flatten({"train": {"pixels": to_pixels(train)},
                         "val": {"pixels": to_pixels(val)}, "test": test})  # fmt: skip

    arrays = store.cached_arrays(paths.dataset_dir(STUDY), "sky", key(cfg, "sky", seed), build)
    return {name: _as_set(arrays) for name, arrays in _unflatten(arrays).items()}


def real_sky(source: str | Path, seed: int) -> dict[str, tuple[np.ndarray, pd.DataFrame]]:
    """The observed sky from a folder (:func:`astrogen.io.anomaly.load_rating_folder`).

    Seed layout: ``train/0.normal`` is split 90/10 into train and validation by a seeded
    permutation and ``test/0.normal`` is the test set. Two plain folders: ``observed/`` is split
    80/10/10 into train, validation and test the same way. Tables hold the file names.
    """
    folder = load_rating_folder(source)
    observed, names = folder["observed"], folder["observed_names"]
    order = np.random.default_rng([seed, 41]).permutation(len(observed))
    if folder["layout"] == "seed":
        if len(folder["test_normal"]) == 0:
            raise ValueError(
                f"{Path(source) / 'test' / '0.normal'}: no held-out observed images; the score's "
                "reference and every AUROC need them"
            )
        n_val = max(1, len(observed) // 10)
        splits = {"train": order[n_val:], "val": order[:n_val]}
        test = (folder["test_normal"], folder["test_normal_names"])
    else:
        n_held = max(1, len(observed) // 10)
        splits = {"train": order[2 * n_held :], "val": order[:n_held]}
        test = (observed[order[n_held : 2 * n_held]], names[order[n_held : 2 * n_held]])
    out = {}
    for name, rows in splits.items():
        out[name] = (_to_uint8(observed[rows]), pd.DataFrame({"file": names[rows]}))
    out["test"] = (_to_uint8(test[0]), pd.DataFrame({"file": test[1]}))
    return out


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(images) * 255).astype(np.uint8)


def rated_images(source: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The simulated images to rate from a source folder: ``test/1.abnormal`` (seed layout) or
    ``simulated/`` (two plain folders), as 8-bit pixels and a table of file names."""
    folder = load_rating_folder(source)
    if len(folder["simulated"]) == 0:
        raise ValueError(f"{source}: no simulated images to rate ({folder['simulated_folder']})")
    return _to_uint8(folder["simulated"]), pd.DataFrame({"file": folder["simulated_names"]})


def rated_folder(folder: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Images to rate from any PNG/JPEG folder (e.g. ``<name>/test/1.abnormal``), as :func:`sky`."""
    images, names = load_images(folder)
    return _to_uint8(images), pd.DataFrame({"file": names})


def suite(
    name: str, cfg: Config, seed: int, progress: bool = True
) -> dict[float, tuple[np.ndarray, pd.DataFrame]]:
    """``{severity: (pixels, table)}`` of a simulation suite at every :data:`SEVERITIES` value."""
    index = list(SUITES).index(name)
    n = cfg.suites.n_suite

    def build() -> dict[str, np.ndarray]:
        sets = {}
        for i, s in enumerate(SEVERITIES):
            images, truth = render_suite(name, s, n, np.random.default_rng([seed, 42, index]))
            sets[f"s{i}"] = _measured(images, truth, progress=False)
        return _flatten(sets)

    k = key(cfg, "suite", seed, suite=name, severities=SEVERITIES)
    sets = _unflatten(store.cached_arrays(paths.dataset_dir(STUDY), f"suite_{name}", k, build))
    return {s: _as_set(sets[f"s{i}"]) for i, s in enumerate(SEVERITIES)}


def ganomaly_for(cfg: Config, seed: int, progress: bool = True) -> tuple[GANomaly, dict]:
    """GANomaly trained on the sky's train split, checkpoint chosen on its validation split."""
    k = key(cfg, "ganomaly", seed)

    def train():
        sets = sky(cfg, seed, progress)
        model = fit_ganomaly(
            to_network(sets["train"][0]), to_network(sets["val"][0]),
            **dataclasses.asdict(cfg.model), seed=seed, progress=progress,
        )  # fmt: skip
        return model, model.config, {"history": model.history}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), "ganomaly", k, ".pt")
    return store.cached_model(path, k, train, GANomaly)


def changed_by_defect(name: str, n: int, stream: list[int]) -> np.ndarray:
    """Which of n images of suite ``name`` its defect changes at s = 1, bool (n,): the images are
    rendered at s = 0 and s = 1 from one stream (common random numbers) and compared pixel by
    pixel, in nanomaggies. (The 8-bit cutouts a score sees can only lose differences, so a
    bound built on this count stays valid, if anything loose.)"""
    before, after = (render_suite(name, s, n, np.random.default_rng(stream))[0] for s in (0, 1))
    return (before != after).any(axis=(1, 2, 3))


def referee_logits(cfg: Config, seed: int, progress: bool = True) -> dict[str, np.ndarray]:
    """Held-out logits of a supervised :class:`~astrogen.models.ganomaly.ImageReferee` per suite at
    s = 1, and which images each defect changes.

    Every suite (and ``"null"``, a second, independent sky) gets ``referee.n_referee`` images from its
    own stream ``[seed, 44, index]``; the sky side is one shared set from ``[seed, 46]`` (not
    ``[seed, 44]``: numpy pads a seed sequence with zeros, so that would be suite 0's stream). Each
    referee trains on the first 80 % of both sides and scores the last 20 %. Separately,
    ``referee.n_changed`` images per suite go through :func:`changed_by_defect`. Keys ``<suite>__sky``,
    ``<suite>__suite`` (test logits) and ``<suite>__changed`` (bool per image).
    """
    r = cfg.referee

    def build() -> dict[str, np.ndarray]:
        n = r.n_referee
        n_train = n - round(REFEREE_TEST_FRACTION * n)
        sky_x = to_network(to_pixels(render_sky(n, np.random.default_rng([seed, 46]))[0]))
        out = {}
        names = [*SUITES, "null"]
        for index, name in enumerate(tqdm(names, desc="referees", disable=not progress)):
            rng = np.random.default_rng([seed, 44, index])
            if name == "null":
                images = render_sky(n, rng)[0]
            else:
                images = render_suite(name, 1.0, n, rng)[0]
                out[f"{name}{_SEP}changed"] = changed_by_defect(name, r.n_changed,
                                                                [seed, 45, index])  # fmt: skip
            suite_x = to_network(to_pixels(images))
            model = fit_referee(
                sky_x[:n_train], suite_x[:n_train], width=r.width, epochs=r.epochs,
                seed=seed, progress=False,
            )  # fmt: skip
            out[f"{name}{_SEP}sky"] = model.logits(sky_x[n_train:])
            out[f"{name}{_SEP}suite"] = model.logits(suite_x[n_train:])
        return out

    k = key(cfg, "referee", seed, sky_stream=46)
    return store.cached_arrays(paths.dataset_dir(STUDY), "referee", k, build)


def referee_table(arrays: dict[str, np.ndarray], n_boot: int, seed: int) -> pd.DataFrame:
    """Per suite: the referee's held-out AUROC with a 95 % bootstrap interval, the fraction f of
    images the defect changes (counted, with its binomial standard error), and the bound
    1 − (1 − f)²/2 (NaN for the null).

    The bound holds for *any* score: a suite whose images equal the sky's with probability
    1 − f lies within total-variation distance δ ≤ f of the sky, so at every threshold
    TPR ≤ FPR + δ, and the area under min(1, FPR + δ) is 1 − (1 − δ)²/2. It is reached by a
    score that ranks the changed suite images above everything and the sky images they came
    from below everything.
    """
    rows = []
    for name, sets in _unflatten(arrays).items():
        lo, hi = auroc_interval(sets["sky"], sets["suite"], n_boot, seed)
        f, f_err = np.nan, np.nan  # the null compares two skies: no defect to count
        if "changed" in sets:
            f = float(np.mean(sets["changed"]))
            f_err = float(np.sqrt(f * (1 - f) / len(sets["changed"])))
        rows.append({"suite": name, "referee_auroc": auroc(sets["sky"], sets["suite"]),
                     "referee_auroc_lo": lo, "referee_auroc_hi": hi, "changed_fraction": f,
                     "changed_fraction_err": f_err,
                     "auroc_bound": 1 - (1 - f) ** 2 / 2})  # fmt: skip
    return pd.DataFrame(rows).set_index("suite")


def bootstrap_interval(
    values: np.ndarray, statistic, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(values)`` (resampling rows); a statistic
    that takes ``axis=1`` (like ``np.mean``) is evaluated on all resamples at once."""
    rng = np.random.default_rng(seed)
    values = np.asarray(values)
    rows = rng.integers(0, len(values), (n_boot, len(values)))
    try:
        draws = statistic(values[rows], axis=1)
    except TypeError:
        draws = [statistic(values[r]) for r in rows]
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def score_batches_agree(model: GANomaly, x: np.ndarray, sizes=(1, 7, 64, 256)) -> float:
    """Largest |score difference| over batch sizes and a shuffled batch composition."""
    x = torch.as_tensor(to_network(x))
    reference = model.score(x, batch=len(x))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    shuffled = np.empty_like(reference)
    shuffled[order.numpy()] = model.score(x[order], batch=13)
    worst = np.abs(shuffled - reference).max()
    for b in sizes:
        worst = max(worst, np.abs(model.score(x, batch=b) - reference).max())
    return float(worst)


def scores(model: GANomaly, pixels: np.ndarray) -> np.ndarray:
    """Raw anomaly scores A(x) (N,) of 8-bit RGB images (eval mode, see :mod:`astrogen.models.ganomaly`)."""
    return model.score(torch.as_tensor(to_network(pixels)))


@torch.no_grad()
def latents(model: GANomaly, pixels: np.ndarray, batch: int = 256) -> np.ndarray:
    """Encoder codes z = E₁(x), (N, latent)."""
    model.eval()
    x = torch.as_tensor(to_network(pixels))
    return torch.cat([model.encoder1(x[i : i + batch]).flatten(1)
                      for i in range(0, len(x), batch)]).numpy()  # fmt: skip


def auroc(sky_values: np.ndarray, simulated: np.ndarray) -> float:
    """P(simulated value > sky value) (+½ for ties): 0.5 when the two are alike."""
    y = np.r_[np.zeros(len(sky_values)), np.ones(len(simulated))]
    return float(roc_auc_score(y, np.r_[sky_values, simulated]))


def _aurocs(sky_values: np.ndarray, simulated: np.ndarray) -> np.ndarray:
    """:func:`auroc` of every row pair of (B, n) sky and (B, m) simulated values (midranks)."""
    both = np.concatenate([simulated, sky_values], 1)
    ranks = stats.rankdata(both, axis=1)
    m, n = simulated.shape[1], sky_values.shape[1]
    return (ranks[:, :m].sum(1) - m * (m + 1) / 2) / (m * n)


def auroc_interval(
    sky_values: np.ndarray, simulated: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`auroc`, both samples resampled."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(sky_values, float), np.asarray(simulated, float)
    draws = []
    for start in range(0, n_boot, 100):  # 100 resamples at a time bound the memory
        k = min(100, n_boot - start)
        draws.append(_aurocs(a[rng.integers(0, len(a), (k, len(a)))],
                             b[rng.integers(0, len(b), (k, len(b)))]))  # fmt: skip
    lo, hi = np.quantile(np.concatenate(draws), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def rating(
    sky_scores: np.ndarray, reference: np.ndarray, simulated: np.ndarray, n_boot: int, seed: int
) -> dict[str, float]:
    """Mean normalised score (percentile of the observed ``reference``) and AUROC vs the sky's
    test scores, each with a 95 % bootstrap interval."""
    normalised = percentile_scores(simulated, reference)
    mean_lo, mean_hi = bootstrap_interval(normalised, np.mean, n_boot, seed)
    auc_lo, auc_hi = auroc_interval(sky_scores, simulated, n_boot, seed)
    return {
        "mean_score": float(normalised.mean()), "mean_score_lo": mean_lo, "mean_score_hi": mean_hi,
        "auroc": auroc(sky_scores, simulated), "auroc_lo": auc_lo, "auroc_hi": auc_hi,
    }  # fmt: skip


def spearman(severity: np.ndarray, values: np.ndarray) -> float:
    r"""Spearman ρ of ``values`` against ``severity``, exact for untied ranks: 1 − 6Σd²/(n(n² − 1))
    (so one swap among five severities is 0.9, not 0.8999…); with ties, scipy's midrank ρ;
    0 when ``values`` are constant."""
    x, y = stats.rankdata(severity), stats.rankdata(values)
    n = len(x)
    if np.ptp(y) == 0:
        return 0.0
    if len(np.unique(x)) == n and len(np.unique(y)) == n:
        return float(1 - 6 * np.sum((x - y) ** 2) / (n * (n**2 - 1)))
    return float(stats.spearmanr(severity, values).statistic)


def two_sided_auroc(sky_values: np.ndarray, simulated: np.ndarray) -> float:
    """max(AUROC, 1 − AUROC): separability by a statistic that may move either way."""
    a = auroc(sky_values, simulated)
    return max(a, 1 - a)


def size_magnitude_fit(table: pd.DataFrame) -> np.ndarray:
    """Least-squares line log10 r50 = c₀ + c₁ (m − 16) of a table with ``r50`` and ``mag``."""
    return np.polyfit(table["mag"] - 16, np.log10(table["r50"]), 1)[::-1]


def size_residual(table: pd.DataFrame, coefficients: np.ndarray) -> np.ndarray:
    """log10 r50 minus the size–magnitude relation [dex]."""
    return np.log10(table["r50"]) - (coefficients[0] + coefficients[1] * (table["mag"] - 16))
