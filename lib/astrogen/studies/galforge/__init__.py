r"""Study 5 pipeline: mock galaxies → star particles, images and conditions, split by galaxy.

Galaxies (not stars) are split into train / validation / test, so held-out galaxies are never
seen by the autoencoder or the flows. ``cfg.data.source`` is ``None`` (the simulator, the default)
or a folder of real galaxies (:func:`astrogen.io.galforge.load_population`); the exact density,
and with it the forward KL, exists only for the simulated population. Star counts grow with
stellar mass (``data.stars_min`` at 10^7.5 M☉ to ``data.stars_max`` at 10^11 M☉, ∝ M^{0.3}), so
star-weighted training is dominated by massive galaxies — the reason for the galaxy-balanced
ablation.

Every step is cached in the store under a key built from the typed configuration
(:mod:`astrogen.studies.galforge.configuration`); :func:`artifact_keys` lists them all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import logsumexp
from tqdm.auto import tqdm

from astrogen import paths, store
from astrogen.config import artifact_key
from astrogen.diagnostics.c2st import c2st
from astrogen.diagnostics.metrics import sliced_wasserstein, wasserstein_1d
from astrogen.io.galforge import load_population
from astrogen.models.autoencoder import Autoencoder, fit_autoencoder
from astrogen.models.bijectors import BoundedLogit
from astrogen.models.flows import ContextMixture, DensityEstimator, fit_density
from astrogen.sims.galforge import (
    COLUMNS,
    CONDITIONS,
    HIDDEN,
    LOG_MASS_RANGE,
    T_MAX,
    global_parameters,
    log_density,
    random_rotation,
    render_image,
    sample_galaxies,
    sample_stars,
)  # fmt: skip
from astrogen.studies.galforge.configuration import ARTIFACTS, FAMILIES, Config

STUDY = "galforge"
# Z in (0, 1) and age in (0, T_MAX) are mapped to the real line before the flow, so no sample can
# leave the physical domain; densities stay in the units of COLUMNS.
PHYSICAL_BOUNDS = [
    (0.0, 1.0) if c == "Z" else (0.0, T_MAX) if c == "age" else None for c in COLUMNS
]
SPLITS = {"train": 0.7, "val": 0.1, "test": 0.2}


class ConditionOrderError(ValueError):
    """Conditions were given in an order other than the one the model was trained with."""


class NamedConditions:
    """The names and order of a model's conditioning vector, enforced wherever one is built.

    The seed fed conditions in one order at training and another at sampling; here a condition
    matrix is only ever built from named columns, and an array arriving with its own list of
    names is checked against the training order.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def matrix(self, table: Mapping[str, np.ndarray] | pd.DataFrame) -> np.ndarray:
        """(N, len(names)) float64 from a table or mapping of named columns."""
        missing = [n for n in self.names if n not in table]
        if missing:
            raise KeyError(f"conditions {missing} missing; the model needs {list(self.names)}")
        return np.column_stack([np.asarray(table[n], dtype=float) for n in self.names])

    def check(self, names: Sequence[str]) -> None:
        """Raise :class:`ConditionOrderError` unless ``names`` is exactly the training order."""
        if tuple(names) != self.names:
            raise ConditionOrderError(
                f"conditions given as {list(names)}, but the model was trained with "
                f"{list(self.names)} in that order"
            )


def star_count(log_mass: np.ndarray, stars_min: int, stars_max: int) -> np.ndarray:
    """Stars per galaxy, ∝ M^{0.3} from ``stars_min`` at the lightest to ``stars_max``."""
    lo, hi = LOG_MASS_RANGE
    frac = (np.asarray(log_mass) - lo) / (hi - lo)
    return np.round(stars_min * (stars_max / stars_min) ** frac).astype(int)


def split_galaxies(n: int, seed: int) -> np.ndarray:
    """'train' / 'val' / 'test' per galaxy, with the :data:`SPLITS` fractions (exact counts)."""
    order = np.random.default_rng([seed, 51]).permutation(n)
    counts = np.round(np.cumsum(list(SPLITS.values())) * n).astype(int)
    labels = np.empty(n, dtype=object)
    for name, lo, hi in zip(SPLITS, np.r_[0, counts[:-1]], counts, strict=True):
        labels[order[lo:hi]] = name
    return labels.astype(str)


def key(cfg: Config, name: str, seed: int, **extra) -> dict:
    """The cache key of artifact ``name`` (:data:`configuration.ARTIFACTS`) under ``cfg`` and
    ``seed``; a folder of real galaxies adds its content fingerprint (files, bytes, SHA-256)."""
    if is_real(cfg):
        extra["source"] = store.content_fingerprint(cfg.data.source)
    return artifact_key(cfg, name, ARTIFACTS[name], seed=seed, **extra)


def is_real(cfg: Config) -> bool:
    """True when ``cfg.data.source`` names a folder of real galaxies."""
    return cfg.data.source is not None


def dataset(cfg: Config, seed: int, progress: bool = True) -> dict:
    """The population: ``galaxies`` (table: measured conditions, split, star count; for the mock
    also its true parameters), ``stars`` (N, 10) and ``star_galaxy`` (N,) galaxy index,
    ``images`` (M, 3, S, S) float32 with ``image_galaxy`` (M,) — several projections per galaxy;
    ``simulated`` says whether the exact density (:func:`log_density`) applies.
    """
    d = cfg.data
    if is_real(cfg):
        data = load_population(d.source, d.image_size)
        galaxies = data["galaxies"]
        galaxies["split"] = split_galaxies(len(galaxies), seed)
        galaxies["n_stars"] = np.bincount(data["star_galaxy"], minlength=len(galaxies))
        return {**data, "simulated": False}

    def build() -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, 50])
        table = sample_galaxies(d.n_galaxies, rng)
        counts = star_count(table["log_mass"], d.stars_min, d.stars_max)
        stars, images, conditions = [], [], []
        for g, galaxy in tqdm(table.iterrows(), total=len(table), desc="galaxies",
                              disable=not progress, mininterval=2):  # fmt: skip
            s = sample_stars(galaxy, int(counts[g]), rng)
            stars.append(s.astype(np.float32))
            conditions.append(global_parameters(s, galaxy["log_mass"]))
            images += [render_image(s, d.image_size, random_rotation(rng), rng)
                       for _ in range(d.projections)]  # fmt: skip
        arrays = {f"galaxy__{c}": table[c].to_numpy() for c in table.columns}
        arrays.update({f"galaxy__{c}": np.array([row[c] for row in conditions])
                       for c in CONDITIONS if c != "log_mass"})  # fmt: skip
        arrays["stars"] = np.concatenate(stars)
        arrays["star_galaxy"] = np.repeat(np.arange(len(table)), counts)
        arrays["images"] = np.stack(images)
        arrays["image_galaxy"] = np.repeat(np.arange(len(table)), d.projections)
        return arrays

    arrays = store.cached_arrays(
        paths.dataset_dir(STUDY), "galaxies", key(cfg, "galaxies", seed), build
    )
    galaxies = pd.DataFrame(
        {k.split("__", 1)[1]: v for k, v in arrays.items() if k.startswith("galaxy__")}
    )
    galaxies["split"] = split_galaxies(len(galaxies), seed)
    galaxies["n_stars"] = np.bincount(arrays["star_galaxy"], minlength=len(galaxies))
    return {
        "simulated": True,
        "galaxies": galaxies,
        "stars": arrays["stars"],
        "star_galaxy": arrays["star_galaxy"],
        "images": arrays["images"],
        "image_galaxy": arrays["image_galaxy"],
    }


def radial_profile(
    radius: np.ndarray,
    values: np.ndarray,
    edges: np.ndarray,
    statistic=np.mean,
    min_count: int = 20,
) -> np.ndarray:
    """``statistic`` of ``values`` in radial bins (len(edges) − 1,), NaN with < ``min_count`` stars."""
    idx = np.digitize(radius, edges) - 1
    return np.array([
        statistic(values[idx == k]) if (idx == k).sum() >= min_count else np.nan
        for k in range(len(edges) - 1)
    ])  # fmt: skip


def autoencoder_for(
    cfg: Config, seed: int, device: str = "cpu", progress: bool = True
) -> tuple[Autoencoder, dict]:
    """Conv autoencoder on the images of training galaxies only (held-out galaxies never seen)."""
    a = cfg.autoencoder
    params = key(cfg, "autoencoder", seed)

    def train():
        data = dataset(cfg, seed, progress)
        train_ids = np.flatnonzero(data["galaxies"]["split"] == "train")
        images = torch.as_tensor(data["images"][np.isin(data["image_galaxy"], train_ids)])
        ae = fit_autoencoder(
            images, latent=a.latent, width=a.width, colour_weight=a.colour_weight,
            epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, val_fraction=a.val_fraction,
            patience=a.patience, seed=seed, device=device, progress=progress,
        )  # fmt: skip
        return ae, ae.config, {"history": ae.history.to_dict()}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), "autoencoder", params, ".pt")
    return store.cached_model(path, params, train, Autoencoder)


def galaxy_latents(ae: Autoencoder, images: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Mean latent over each galaxy's projections, (n galaxies, latent)."""
    return mean_per_galaxy(ae.embed(torch.as_tensor(images)).numpy(), owner, n)


def mean_per_galaxy(z: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Mean of the rows of z (M, L) per owner index in [0, n), (n, L)."""
    counts = np.bincount(owner, minlength=n)[:, None]
    return (
        np.stack([np.bincount(owner, weights=z[:, k], minlength=n) for k in range(z.shape[1])], 1)
        / counts
    )


def condition_names(cfg: Config, use_latent: bool) -> tuple[str, ...]:
    """The flow's conditions in order: the global parameters, then the latent z0 … z(L−1)."""
    latent = tuple(f"z{k}" for k in range(cfg.autoencoder.latent)) if use_latent else ()
    return tuple(CONDITIONS) + latent


def galaxy_conditions(
    cfg: Config, seed: int, data: dict | None = None, image_latents: np.ndarray | None = None,
    device: str = "cpu",
) -> pd.DataFrame:  # fmt: skip
    """Per-galaxy table of every available condition (global parameters and mean latents).

    ``image_latents`` (one row per image) saves re-encoding when the caller already has them;
    otherwise the autoencoder is loaded (trained on ``device`` if missing).
    """
    data = data or dataset(cfg, seed, progress=False)
    if image_latents is None:
        image_latents = projection_latents(cfg, seed, data, device)
    galaxies = data["galaxies"]
    z = mean_per_galaxy(image_latents, data["image_galaxy"], len(galaxies))
    table = galaxies[[*CONDITIONS, "split"]].copy()
    for k in range(z.shape[1]):
        table[f"z{k}"] = z[:, k]
    return table


def projection_latents(cfg: Config, seed: int, data: dict, device: str = "cpu") -> np.ndarray:
    """The autoencoder's latent of every image of ``data``, (M images, latent); the autoencoder
    is loaded (trained on ``device`` if missing)."""
    ae, _ = autoencoder_for(cfg, seed, device, progress=False)
    return ae.embed(torch.as_tensor(data["images"])).numpy()


def _latent_columns(names: Sequence[str]) -> list[int]:
    return [i for i, n in enumerate(names) if n.startswith("z")]


def projection_conditions(
    names: Sequence[str], table: pd.DataFrame, data: dict, image_latents: np.ndarray, galaxy: int
) -> np.ndarray:
    """The conditions of ``galaxy`` once per projection, (K, C) in ``names`` order: its global
    parameters with the latent of each of its K images (one row if ``names`` has no latent)."""
    rows = NamedConditions(names).matrix(table.iloc[[galaxy]])
    latent_columns = _latent_columns(names)
    if not latent_columns:
        return rows
    own = image_latents[data["image_galaxy"] == galaxy]
    rows = np.repeat(rows, len(own), 0)
    rows[:, latent_columns] = own
    return rows


def held_out_density(
    est: DensityEstimator, names: Sequence[str], table: pd.DataFrame, data: dict,
    image_latents: np.ndarray | None, galaxy: int,
) -> ContextMixture:  # fmt: skip
    """The model density of a held-out ``galaxy``: the equal mixture of q(star | conditions)
    over its projections' latents (``image_latents``, one row per image of ``data``), or, with
    ``image_latents=None``, q at its mean latent in ``table``."""
    views = (
        NamedConditions(names).matrix(table.iloc[[galaxy]]) if image_latents is None
        else projection_conditions(names, table, data, image_latents, galaxy)
    )  # fmt: skip
    return ContextMixture(est, torch.as_tensor(views))


def star_arrays(
    data: dict, table: pd.DataFrame, split: str, names: tuple[str, ...],
    balanced_to: int | None = None, seed: int = 0, image_latents: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(stars (N, 10), conditions (N, C) in ``names`` order, galaxy index (N,)) of a split.

    ``balanced_to`` resamples every galaxy to that many stars (without replacement where it has
    more, with replacement where it has fewer), so each galaxy weighs the same in training.
    ``image_latents`` (one row per image of ``data["images"]``) gives every star the latent
    of a random projection of its galaxy instead of the galaxy mean: with a few dozen training
    galaxies, the spread over projections is what keeps the flow from treating each galaxy's
    latent as an isolated point (held-out galaxies' latents then fall between known ones).
    """
    ids = np.flatnonzero(table["split"].to_numpy() == split)
    owner = data["star_galaxy"]
    rows = np.flatnonzero(np.isin(owner, ids))
    if balanced_to is not None:
        rng = np.random.default_rng([seed, 53])
        rows = np.concatenate([
            rng.choice(r, balanced_to, replace=len(r) < balanced_to)
            for r in (np.flatnonzero(owner == g) for g in ids)
        ])  # fmt: skip
    context = NamedConditions(names).matrix(table.iloc[owner[rows]].reset_index(drop=True))
    latent_columns = _latent_columns(names)
    if image_latents is not None and latent_columns:
        rng = np.random.default_rng([seed, 54])
        images_of = [np.flatnonzero(data["image_galaxy"] == g) for g in range(len(table))]
        pick = np.array([rng.choice(images_of[g]) for g in owner[rows]])
        context[:, latent_columns] = image_latents[pick]
    return data["stars"][rows].astype(np.float64), context, owner[rows]


def _trained_flow(
    cfg: Config, seed: int, family: str, lr: float, epochs: int, params: dict, *,
    use_latent: bool, balanced: bool, device: str, progress: bool,
) -> tuple[DensityEstimator, dict]:  # fmt: skip
    """A conditional flow q(star | conditions) of ``family`` trained on the training galaxies,
    early-stopped on the validation galaxies, cached under ``params``; the sidecar records the
    condition order and the learning rate."""
    f = cfg.flow
    names = condition_names(cfg, use_latent)

    def train():
        data = dataset(cfg, seed, progress=False)
        z_images = projection_latents(cfg, seed, data, device)
        table = galaxy_conditions(cfg, seed, data, z_images)
        counts = data["galaxies"].loc[data["galaxies"]["split"] == "train", "n_stars"]
        per_galaxy = int(np.median(counts)) if balanced else None
        per_projection = z_images if f.latent_per_projection else None
        x, c, _ = star_arrays(data, table, "train", names, per_galaxy, seed, per_projection)
        x_val, c_val, _ = star_arrays(data, table, "val", names)
        patience = f.patience if f.patience is not None else max(3, epochs // 4)
        est = fit_density(
            x, c, family, bijector=BoundedLogit(PHYSICAL_BOUNDS), transforms=f.transforms,
            hidden=(f.hidden,) * f.layers, epochs=epochs, batch_size=f.batch_size, lr=lr,
            validation=(x_val, c_val), patience=patience, seed=seed, device=device,
            progress=progress,
        )  # fmt: skip
        sidecar = {"history": est.history.to_dict(), "conditions": list(names), "lr": lr}
        return est, est.config, sidecar

    est, record = store.cached_model(
        _flow_path(params), params, train, DensityEstimator.from_config
    )
    NamedConditions(names).check(record["conditions"])
    return est, record


def _flow_path(params: dict) -> Path:
    name = f"{params['artifact']}_{params['family']}"
    return store.artifact_path(paths.checkpoint_dir(STUDY), name, params, ".pt")


def tuning_flow(
    cfg: Config, seed: int, family: str, lr: float, device: str = "cpu", progress: bool = True
) -> tuple[DensityEstimator, dict]:
    """One learning-rate trial: ``family`` at ``lr`` for ``tuning.epochs``, parameters + latent."""
    params = key(cfg, "tuning_flow", seed, family=family, lr=float(lr))
    return _trained_flow(cfg, seed, family, float(lr), cfg.tuning.epochs, params,
                         use_latent=True, balanced=False, device=device,
                         progress=progress)  # fmt: skip


def tune_learning_rates(
    cfg: Config, seed: int, device: str = "cpu", progress: bool = True,
    families: Sequence[str] = FAMILIES,
) -> pd.DataFrame:  # fmt: skip
    """Best validation NLL of each family after ``tuning.epochs`` at each rate of
    ``tuning.lr_grid``."""
    rows = []
    for family in families:
        for lr in cfg.tuning.lr_grid:
            _, record = tuning_flow(cfg, seed, family, lr, device, progress)
            rows.append(
                {"family": family, "lr": float(lr), "val_nll": min(record["history"]["val"])}
            )
    return pd.DataFrame(rows)


def best_learning_rates(tuning: pd.DataFrame) -> pd.Series:
    """Learning rate with the lowest validation NLL per family, from :func:`tune_learning_rates`."""
    return tuning.loc[tuning.groupby("family")["val_nll"].idxmin()].set_index("family")["lr"]


def flow_key(
    cfg: Config, seed: int, family: str, *, use_latent: bool = True, balanced: bool = False,
    tuned_on: int | None = None,
) -> dict:  # fmt: skip
    """The cache key of a trained flow (see :func:`flow_for`)."""
    tuned_on = seed if tuned_on is None else tuned_on
    return key(cfg, "flow", seed, family=family, use_latent=use_latent, balanced=balanced,
               tuned_on=tuned_on)  # fmt: skip


def flow_for(
    cfg: Config, seed: int, family: str, *, use_latent: bool = True, balanced: bool = False,
    tuned_on: int | None = None, device: str = "cpu", progress: bool = True,
) -> tuple[DensityEstimator, dict]:  # fmt: skip
    """A conditional flow of ``family`` trained for ``flow.epochs`` on the training galaxies of
    replicate ``seed``, early-stopped on its validation galaxies, at the learning rate tuned on
    the validation galaxies of replicate ``tuned_on`` (default ``seed``; the ablation replicates
    reuse the first seed's rate). ``use_latent``: conditioned on the image latent as well as the
    global parameters; ``balanced``: every training galaxy resampled to the median star count.
    The sidecar records the condition order and the learning rate (``record["lr"]``).
    """
    tuned_on = seed if tuned_on is None else tuned_on
    params = flow_key(cfg, seed, family, use_latent=use_latent, balanced=balanced,
                      tuned_on=tuned_on)  # fmt: skip
    lr = None
    if not store.is_cached(_flow_path(params)):
        tuning = tune_learning_rates(cfg, tuned_on, device, progress, families=(family,))
        lr = float(best_learning_rates(tuning)[family])
    return _trained_flow(cfg, seed, family, lr, cfg.flow.epochs, params, use_latent=use_latent,
                         balanced=balanced, device=device, progress=progress)  # fmt: skip


def artifact_keys(cfg: Config, seed: int) -> dict[str, dict]:
    """The key of every artifact a run of the study at ``seed`` can build, by a readable name:
    the population and autoencoder of each ablation replicate, every learning-rate trial, and
    every family's flows (the ablation flows are built for the best family only, which the run
    finds; all are listed)."""
    keys = {}
    replicates = range(seed, seed + cfg.ablation.seeds)
    for s in replicates:
        if not is_real(cfg):
            keys[f"galaxies/seed={s}"] = key(cfg, "galaxies", s)
        keys[f"autoencoder/seed={s}"] = key(cfg, "autoencoder", s)
    for family in FAMILIES:
        for lr in cfg.tuning.lr_grid:
            keys[f"tuning_flow/{family}/lr={lr:g}"] = key(
                cfg, "tuning_flow", seed, family=family, lr=float(lr)
            )
        keys[f"flow/{family}/balanced"] = flow_key(cfg, seed, family, balanced=True)
        for s in replicates:
            for use_latent in (True, False):
                name = f"flow/{family}/{'latent' if use_latent else 'parameters'}/seed={s}"
                keys[name] = flow_key(cfg, s, family, use_latent=use_latent, tuned_on=seed)
    return keys


def sample_validity(samples: np.ndarray) -> np.ndarray:
    """True where a sampled star is physical: finite, Z > 0, 0 ≤ age ≤ 13.8 Gyr, (N,)."""
    z, age = samples[:, COLUMNS.index("Z")], samples[:, COLUMNS.index("age")]
    return np.isfinite(samples).all(1) & (z > 0) & (age >= 0) & (age <= T_MAX)


def held_out_galaxy_stars(
    data: dict, rng: np.random.Generator, max_stars: int, split: str = "test"
) -> Iterator[tuple[int, np.ndarray]]:
    """(galaxy index, up to ``max_stars`` of its stars (n, 10) float64, drawn without
    replacement) for each galaxy of ``split`` in turn; ``rng`` draws the subset."""
    for g in np.flatnonzero(data["galaxies"]["split"].to_numpy() == split):
        stars = data["stars"][data["star_galaxy"] == g].astype(np.float64)
        yield g, stars[rng.choice(len(stars), min(len(stars), max_stars), replace=False)]


def evaluate_flow(
    est: DensityEstimator, names: Sequence[str], data: dict, table: pd.DataFrame, seed: int,
    max_stars: int = 4000, *, image_latents: np.ndarray | None, split: str = "test",
) -> tuple[pd.DataFrame, dict[str, float]]:  # fmt: skip
    """Per galaxy of ``split`` (default the test galaxies): NLL and forward KL from the exact
    density, W1 per dimension (in units of the true standard deviation), sliced W1
    (standardised), invalid-sample fraction, the largest distance of a valid sample from the
    true mean in true σ (``max_z``; ``max_z_truth`` for the true stars themselves), the sample's
    recomputed global parameters; plus pooled numbers over the split's galaxies: C2ST AUC of
    truth vs samples on rows (star, the galaxy's conditions at its mean latent), and sampling
    throughput.

    W1 weighs every sample by its distance, so one sample at 10⁸ σ (an affine flow's
    exponential tails can produce one) sets a galaxy's W1 and then the mean over galaxies; the
    medians over galaxies (``w1_median``, ``sliced_w1_median``) are reported beside the means,
    and ``max_z`` names the cause.

    A galaxy's model density is the equal mixture of q(star | parameters, z_k) over the latents
    z_k of its K projections (``image_latents``, one row per image of ``data``; see
    :func:`held_out_density`), as every training star carried the latent of one random
    projection; ``image_latents=None`` conditions on the galaxy's mean latent in ``table``
    instead. Flows without latent conditions are the same either way. A mixture samples in K
    calls of the flow, so its ``stars_per_second`` is below a single context's.

    Up to ``max_stars`` true stars per galaxy are compared with as many samples.
    """
    named = NamedConditions(names)
    galaxies = data["galaxies"]
    rng = np.random.default_rng([seed, 54])
    torch.manual_seed(seed)
    rows, truth_pool, sample_pool = [], [], []
    n_sampled, t_sampling = 0, 0.0
    for g, stars in held_out_galaxy_stars(data, rng, max_stars, split):
        context = named.matrix(table.iloc[[g]])
        density = held_out_density(est, names, table, data, image_latents, g)
        with torch.no_grad():
            log_q = density.log_prob(torch.as_tensor(stars)).numpy()
            start = time.perf_counter()
            samples = density.sample(len(stars)).numpy()
            t_sampling += time.perf_counter() - start
        n_sampled += len(samples)
        log_p = log_density(stars, galaxies.iloc[g]) if data["simulated"] else np.nan
        valid = sample_validity(samples)
        scale = stars.std(0)
        recomputed = global_parameters(samples[valid], galaxies.loc[g, "log_mass"])
        row = {
            "galaxy": g, "log_mass": galaxies.loc[g, "log_mass"], "nll": float(-log_q.mean()),
            "forward_kl": float(np.mean(log_p - log_q)), "invalid_fraction": float(1 - valid.mean()),
            "sliced_w1": sliced_wasserstein(stars / scale, samples[valid] / scale, seed=seed),
            "max_z": float(np.abs((samples[valid] - stars.mean(0)) / scale).max(initial=0.0)),
            "max_z_truth": float(np.abs((stars - stars.mean(0)) / scale).max()),
        }  # fmt: skip
        for k, col in enumerate(COLUMNS):
            row[f"w1_{col}"] = wasserstein_1d(stars[:, k], samples[valid, k]) / scale[k]
        for key in ("age_median", "age_p10", "metallicity_mean"):
            row[f"{key}_rel_error"] = recomputed[key] / galaxies.loc[g, key] - 1
        rows.append(row)
        truth_pool.append(np.hstack([stars, np.repeat(context, len(stars), 0)]))
        sample_pool.append(np.hstack([samples[valid], np.repeat(context, valid.sum(), 0)]))
    per_galaxy = pd.DataFrame(rows).set_index("galaxy")
    pooled = {
        "c2st_auc": pooled_c2st(truth_pool, sample_pool, seed),
        "stars_per_second": n_sampled / t_sampling,
        "nll": float(per_galaxy["nll"].mean()),
        "forward_kl": float(per_galaxy["forward_kl"].mean()),
        "invalid_fraction": float(per_galaxy["invalid_fraction"].mean()),
        "w1_mean": float(per_galaxy[[f"w1_{c}" for c in COLUMNS]].to_numpy().mean()),
        "sliced_w1": float(per_galaxy["sliced_w1"].mean()),
        "w1_median": float(per_galaxy[[f"w1_{c}" for c in COLUMNS]].mean(axis=1).median()),
        "sliced_w1_median": float(per_galaxy["sliced_w1"].median()),
        "max_z": float(per_galaxy["max_z"].max()),
        "max_z_truth": float(per_galaxy["max_z_truth"].max()),
    }
    return per_galaxy, pooled


def pooled_c2st(truth: Sequence[np.ndarray], sampled: Sequence[np.ndarray], seed: int) -> float:
    """C2ST AUC of true vs sampled rows (star (10), conditions) pooled over galaxies; Z enters as
    log10 Z so that the classifier's job is about shape, not units."""
    pooled = [np.concatenate(rows) for rows in (truth, sampled)]
    for a in pooled:
        a[:, COLUMNS.index("Z")] = np.log10(a[:, COLUMNS.index("Z")])
    return c2st(*pooled, seed=seed).auc


UNKNOWABLE = (*HIDDEN, "feh_zero")


def cost_of_unknown_properties(
    data: dict, seed: int, n_draws: int = 48, max_stars: int = 2000,
    joint: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:  # fmt: skip
    r"""What not knowing a galaxy property costs even a perfect model, per test galaxy.

    For a property set :math:`h` of galaxy :math:`θ = (h, θ_{\rm rest})`, the best density that
    does not know :math:`h` (beyond the stellar mass) is the mixture over its prior at that
    mass, :math:`\bar q(s) = \frac1K\sum_k p(s \mid h_k, θ_{\rm rest})`, :math:`h_k \sim
    p(h \mid M_*)`, and its forward KL :math:`\langle \ln p(s\mid θ) - \ln \bar q(s)\rangle_p`
    [nats/star] is the floor a flow conditioned without :math:`h` cannot beat. The global
    parameters reveal part of some properties (mean Z the metallicity zero point ``feh_zero``), so
    these are upper bounds on the floor. Costs do not add up: for independent properties the
    joint cost lies between the largest single cost and their sum, so a set must be asked for
    as a whole (``joint``: name → properties). The estimate of :math:`\bar q` from ``n_draws``
    draws is biased slightly upwards.

    Columns: each of :data:`UNKNOWABLE` alone, ``all`` of them, then the ``joint`` sets.
    """
    galaxies = data["galaxies"]
    rng = np.random.default_rng([seed, 55])
    sets = {**{h: (h,) for h in UNKNOWABLE}, "all": UNKNOWABLE, **(joint or {})}
    rows = []
    for g, stars in held_out_galaxy_stars(data, rng, max_stars):
        galaxy = galaxies.iloc[g]
        log_p = log_density(stars, galaxy)
        draws = sample_galaxies(n_draws, rng, log_mass=galaxy["log_mass"])
        row = {"galaxy": g}
        for name, props in sets.items():
            log_q = [
                log_density(stars, {**galaxy, **{h: draws.iloc[k][h] for h in props}})
                for k in range(n_draws)
            ]
            mixture = logsumexp(np.stack(log_q), axis=0) - np.log(n_draws)
            row[name] = float(np.mean(log_p - mixture))
        rows.append(row)
    return pd.DataFrame(rows).set_index("galaxy")


def c2st_of_unknown_properties(
    data: dict, seed: int, sets: Mapping[str, Sequence[str]], n_draws: int = 64,
    max_stars: int = 3000,
) -> dict[str, float]:  # fmt: skip
    r"""The C2ST AUC of the KL-optimal model that does not know each property set.

    Per test galaxy, up to ``max_stars`` true stars are compared with as many draws from the
    mixture :math:`\bar q` of :func:`cost_of_unknown_properties` (``n_draws`` prior draws of the
    set at the galaxy's mass, an equal share of stars from each), pooled over the test galaxies
    with the galaxy's global parameters as conditions, as :func:`evaluate_flow` pools a flow's
    samples (the conditions only tell galaxies apart; a flow's latent columns add nothing else).
    A reference, not a strict bound: the mixture minimises the forward KL, not the AUC, and the
    classifier is a finite one. An empty set gives the truth against itself, ≈ 0.5.
    Returns set name → AUC.
    """
    galaxies = data["galaxies"]
    rng = np.random.default_rng([seed, 56])
    pools: dict[str, tuple[list, list]] = {name: ([], []) for name in sets}
    for g, stars in held_out_galaxy_stars(data, rng, max_stars):
        galaxy = galaxies.iloc[g]
        context = np.repeat(galaxy[list(CONDITIONS)].to_numpy(float)[None], len(stars), 0)
        draws = sample_galaxies(n_draws, rng, log_mass=galaxy["log_mass"])
        shares = np.array_split(np.arange(len(stars)), n_draws)
        for name, props in sets.items():
            mixture = np.concatenate([
                sample_stars({**galaxy, **{h: draws.iloc[k][h] for h in props}}, len(share), rng)
                for k, share in enumerate(shares)
            ])  # fmt: skip
            pools[name][0].append(np.hstack([stars, context]))
            pools[name][1].append(np.hstack([mixture, context]))
    return {name: pooled_c2st(*pools[name], seed) for name in sets}


def robust_limits(
    values: np.ndarray, percentiles: tuple[float, float] = (5.0, 95.0), margin: float = 0.5
) -> tuple[float, float]:
    """Axis limits that show the bulk of ``values``: their ``percentiles`` widened by ``margin``
    of the span between them on each side, never wider than the finite data, plus 4 % headroom."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    lo, hi = np.percentile(values, percentiles)
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    low, high = max(values.min(), lo - margin * span), min(values.max(), hi + margin * span)
    pad = 0.04 * (high - low if high > low else span)
    return float(low - pad), float(high + pad)


def plot_clipped_curves(ax, curves: Mapping[str, Sequence[float]]) -> int:
    """One line per curve against epoch 1, 2, … on a y-range of :func:`robust_limits` of all the
    curves together, so that one spike cannot flatten the others; each point beyond the range
    sits on its edge as a triangle labelled with its value. Returns how many points were clipped.
    """
    low, high = robust_limits(np.concatenate([np.asarray(c, dtype=float) for c in curves.values()]))
    clipped = 0
    for k, (name, curve) in enumerate(curves.items()):
        y = np.asarray(curve, dtype=float)
        epoch = np.arange(1, len(y) + 1)
        shown = np.clip(y, low, high)
        ax.plot(epoch, shown, "o-", color=f"C{k}", label=name)
        for e, value, at in zip(epoch, y, shown, strict=True):
            if np.isfinite(at) and value != at:
                clipped += 1
                above = value > high
                ax.plot(e, at, "^" if above else "v", color=f"C{k}", ms=11, mec="k")
                ax.annotate(f"{value:.3g}", (e, at), xytext=(7, -10 if above else 4),
                            textcoords="offset points", fontsize=8, color=f"C{k}")  # fmt: skip
    ax.set_ylim(low, high)
    return clipped
