r"""Study 3 pipeline: mini-Balrog injections → emulators (cWGAN-GP, flow) and detection model.

The emulated quantity, per band, is the shift of an asinh magnitude (Lupton, Gunn & Szalay 1999)

.. math:: μ(f) = \mathrm{ZP} - 2.5\log_{10} b - \tfrac{2.5}{\ln 10}\,\mathrm{asinh}\big(f / 2b\big),
          \qquad Δμ = μ(f_{\rm obs}) - μ(f_{\rm true}),

which equals the Pogson magnitude for f ≫ b and stays finite for the faint detections whose
measured flux scatters to zero or below. The softening b is the flux of magnitude
:data:`SOFTENING_MAG` (≈ the 1σ Kron-aperture noise of the survey).

Injections are split by deep galaxy *and* by sky region (cells of :data:`REGION_DEG` degrees):
a row belongs to a split only if both its galaxy and its cell do, so neither a galaxy's repeat
injections nor a patch of sky is shared between training and evaluation.

Every step is cached in the store under a key built from the typed configuration
(:mod:`astrogen.studies.balrog.configuration`, :func:`key`), so any notebook of the study can
run first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from astrogen import paths, store
from astrogen.config import artifact_key
from astrogen.diagnostics.metrics import wasserstein_1d
from astrogen.io.balrog import load_balrog_catalogue
from astrogen.models.classifier import ProbabilityClassifier, fit_classifier
from astrogen.models.flows import DensityEstimator, fit_density
from astrogen.models.gan import ConditionalWGAN, fit_cwgan_gp
from astrogen.sims.balrog import (
    BANDS,
    FWHM_PER_SIGMA,
    PIXEL_SCALE,
    ZERO_POINT,
    DeepCatalogue,
    SurveyFootprint,
    inject_fixed,
    run_injections,
    sample_deep_catalogue,
)  # fmt: skip
from astrogen.studies.balrog.configuration import ARTIFACTS, Config, DataConfig

STUDY = "balrog"
SOFTENING_MAG = 26.5
REGION_DEG = 1.0
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}
CONDITIONS = [f"psf_fwhm_{b}" for b in BANDS] + [f"sky_sigma_{b}" for b in BANDS]
TRUTHS = [f"true_mag_{b}" for b in BANDS]
DELTAS = [f"dmu_{b}" for b in BANDS]
MODEL_ARTIFACTS = ("cwgan_gp", "flow_nsf", "detection")  # what a catalogue file trains
SIMULATOR_ARTIFACTS = ("injections", "fixed_input")  # what only the simulator builds


def key(cfg: Config, name: str, seed: int, **extra) -> dict:
    """The cache key of artifact ``name`` (:data:`configuration.ARTIFACTS`) under ``cfg``, ``seed``;
    a model trained on a catalogue file adds the file's content fingerprint."""
    if cfg.data.source is not None and name in MODEL_ARTIFACTS:
        extra["source_file"] = store.content_fingerprint(cfg.data.source)
    return artifact_key(cfg, name, ARTIFACTS[name], seed=seed, **extra)


def artifact_keys(cfg: Config, seed: int) -> dict[str, dict]:
    """The key of every artifact the study builds under ``cfg`` (a catalogue trains the models
    only; the simulator builds the injections and the fixed-input repeats too)."""
    names = MODEL_ARTIFACTS
    if cfg.data.source is None:
        names = (*SIMULATOR_ARTIFACTS, *MODEL_ARTIFACTS)
    return {name: key(cfg, name, seed) for name in names}


def asinh_mag(flux: np.ndarray) -> np.ndarray:
    """μ(f) of the module docstring, any shape, flux in zero-point-30 units."""
    b = 10 ** (-0.4 * (SOFTENING_MAG - ZERO_POINT))
    return ZERO_POINT - 2.5 * np.log10(b) - 2.5 / np.log(10) * np.arcsinh(flux / (2 * b))


def split_labels(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """'train' / 'val' / 'test' per row, or '' where galaxy and sky cell disagree."""
    rng = np.random.default_rng([seed, 31])
    names = np.array(list(SPLITS))
    cuts = np.cumsum(list(SPLITS.values()))[:-1]

    def assign(keys: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(keys, return_inverse=True)
        return names[np.searchsorted(cuts, rng.random(len(unique)), side="right")][inverse]

    by_galaxy = assign(frame["deep_id"].to_numpy())
    cell = np.floor(frame["ra"].to_numpy() / REGION_DEG) * 1000 + np.floor(
        frame["dec"].to_numpy() / REGION_DEG
    )
    by_region = assign(cell)
    return np.where(by_galaxy == by_region, by_galaxy, "")


def with_derived_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``dmu_<band>`` (Δμ, NaN if undetected) to an injection catalogue."""
    out = frame.copy()
    for b in BANDS:
        true_flux = 10 ** (-0.4 * (out[f"true_mag_{b}"] - ZERO_POINT))
        out[f"dmu_{b}"] = asinh_mag(out[f"obs_flux_{b}"]) - asinh_mag(true_flux)
    return out


def injections(cfg: Config, seed: int, progress: bool = True) -> pd.DataFrame:
    """The injection catalogue with Δμ and a ``split`` column (see :func:`split_labels`).

    ``cfg.data.source`` ``None`` runs (or loads the cached) mini-Balrog; otherwise it is a real
    catalogue read with ``cfg.data.columns``, the keyword arguments of
    :func:`~astrogen.io.balrog.load_balrog_catalogue` (``true_flux_columns``,
    ``obs_flux_columns``, ``detected_column``, ``condition_columns``, ``deep_id_column``,
    ``position_columns``, ``zero_point``). Conditions must be named as :data:`CONDITIONS`; the
    split needs ``deep_id_column`` and ``position_columns``.
    """
    d = cfg.data
    if d.source is not None:
        return real_injections(d, seed)

    def build() -> dict[str, np.ndarray]:
        frame = run_injections(
            d.n_injections, seed, SurveyFootprint(seed), repeats=d.repeats, progress=progress,
            batch_size=d.batch_size,
        )  # fmt: skip
        arrays = {c: frame[c].to_numpy() for c in frame.columns}
        arrays["injections_per_second"] = np.array(frame.attrs["injections_per_second"])
        return arrays

    path = paths.dataset_dir(STUDY)
    arrays = store.cached_arrays(path, "injections", key(cfg, "injections", seed), build)
    rate = float(arrays.pop("injections_per_second"))
    frame = with_derived_columns(pd.DataFrame(arrays))
    frame["split"] = split_labels(frame, seed)
    frame.attrs["injections_per_second"] = rate
    return frame


def real_injections(data: DataConfig, seed: int) -> pd.DataFrame:
    """A real Balrog-style catalogue in the study's columns, with Δμ and the split."""
    columns = data.columns
    if not isinstance(columns, dict):
        raise ValueError(
            f"{data.source}: data.columns must map load_balrog_catalogue's keyword arguments "
            f"to the file's columns, got {columns!r}"
        )
    if not columns.get("deep_id_column") or not columns.get("position_columns"):
        raise ValueError(
            f"{data.source}: the split by galaxy and sky region needs 'deep_id_column' and "
            "'position_columns' (ra, dec in degrees) in data.columns"
        )
    frame = load_balrog_catalogue(data.source, **columns)
    missing = [c for c in CONDITIONS + TRUTHS if c not in frame]
    if missing:
        raise ValueError(
            f"{data.source}: the emulators need the conditions {CONDITIONS} and true r, i, z "
            f"fluxes; missing after loading: {missing}"
        )
    frame = with_derived_columns(frame)
    frame["split"] = split_labels(frame, seed)
    frame.attrs["injections_per_second"] = float("nan")
    return frame


def error_scale(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    r"""Expected Δμ scale per band (N, 3) from conditions c (N, 6) and true magnitudes t (N, 3).

    The asinh-magnitude error of a background-limited point source,

    .. math:: s = \frac{2.5}{\ln 10}\,\frac{σ_F}{\sqrt{F^2 + 4b^2}}, \qquad
              σ_F = σ_{\rm sky}\sqrt{4π}\,σ_{\rm psf},

    plus 0.01 mag in quadrature. The emulators model Δμ / s: dividing out the known noise
    scaling leaves a near-standard target whose shape, not its 100-fold range in width, has to be
    learned. It is a fixed invertible map given the inputs, so nothing is lost.
    """
    sigma_psf = c[:, :3] / FWHM_PER_SIGMA / PIXEL_SCALE
    sigma_flux = c[:, 3:] * np.sqrt(4 * np.pi) * sigma_psf
    flux = 10 ** (-0.4 * (t - ZERO_POINT))
    b = 10 ** (-0.4 * (SOFTENING_MAG - ZERO_POINT))
    s = 2.5 / np.log(10) * sigma_flux / np.sqrt(flux**2 + 4 * b**2)
    return np.sqrt(s**2 + 0.01**2)


def emulator_arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detected rows as (Δμ (N, 3), conditions (N, 6), true magnitudes (N, 3))."""
    det = frame[frame["detected"].astype(bool)]
    return det[DELTAS].to_numpy(), det[CONDITIONS].to_numpy(), det[TRUTHS].to_numpy()


def w1_per_band(emulated: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """1-D Wasserstein distance per column between (N, 3) and (M, 3) samples, shape (3,)."""
    return np.array([wasserstein_1d(emulated[:, k], observed[:, k]) for k in range(3)])


def gan_for(
    cfg: Config, seed: int, device: str = "cpu", progress: bool = True
) -> tuple[ConditionalWGAN, dict]:
    """The cWGAN-GP on detected training injections; the kept generator state is the one with
    the lowest summed per-band W1 of Δμ (emulated vs observed) on the validation split."""
    g = cfg.gan
    params = key(cfg, "cwgan_gp", seed)

    def train():
        frame = injections(cfg, seed)
        y, c, t = emulator_arrays(frame[frame["split"] == "train"])
        y_val, c_val, t_val = emulator_arrays(frame[frame["split"] == "val"])
        scale_val = error_scale(c_val, t_val)
        gen = torch.Generator().manual_seed(seed)

        def validation_w1(model: ConditionalWGAN) -> float:
            gen.manual_seed(seed)  # the same noise at every evaluation
            emulated = model.sample(c_val, t_val, generator=gen) * scale_val
            return float(w1_per_band(emulated, y_val).sum())

        model = fit_cwgan_gp(
            y / error_scale(c, t), c, t, validation_score=validation_w1, noise_dim=g.noise_dim,
            width=g.width, trunk_layers=g.trunk_layers, gp_weight=g.gp_weight,
            critic_steps=g.critic_steps, generator_steps=g.generator_steps,
            batch_size=g.batch_size, lr=g.lr, betas=g.betas, eval_every=g.eval_every,
            ema_decay=g.ema, seed=seed, device=device, progress=progress,
        )  # fmt: skip
        return model, model.config, {"history": model.history}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), "cwgan_gp", params, ".pt")
    return store.cached_model(path, params, train, ConditionalWGAN)


def flow_for(
    cfg: Config, seed: int, device: str = "cpu", progress: bool = True
) -> tuple[DensityEstimator, dict]:
    """The conditional spline flow q(Δμ | conditions, true magnitudes) on the same rows."""
    f = cfg.flow
    params = key(cfg, "flow_nsf", seed)

    def train():
        frame = injections(cfg, seed)
        y, c, t = emulator_arrays(frame[frame["split"] == "train"])
        est = fit_density(
            torch.as_tensor(y / error_scale(c, t)), torch.as_tensor(np.concatenate([c, t], 1)),
            family="nsf", transforms=f.transforms, hidden=(f.hidden,) * 2, epochs=f.epochs,
            batch_size=f.batch_size, lr=f.lr, patience=f.patience, seed=seed, device=device,
            progress=progress,
        )  # fmt: skip
        return est, est.config, {"history": est.history.to_dict()}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), "flow_nsf", params, ".pt")
    return store.cached_model(path, params, train, DensityEstimator.from_config)


def detection_for(
    cfg: Config, seed: int, device: str = "cpu", progress: bool = True
) -> tuple[ProbabilityClassifier, dict]:
    """p(detected | conditions, true magnitudes) on all training injections."""
    dc = cfg.detection
    params = key(cfg, "detection", seed)

    def train():
        frame = injections(cfg, seed)
        rows = frame[frame["split"] == "train"]
        clf = fit_classifier(
            rows[CONDITIONS + TRUTHS].to_numpy(), rows["detected"].to_numpy().astype(int),
            hidden=dc.hidden, layers=dc.layers, epochs=dc.epochs, batch_size=dc.batch_size,
            lr=dc.lr, patience=dc.patience, seed=seed, device=device, progress=progress,
        )  # fmt: skip
        return clf, clf.config, {"history": clf.history.to_dict()}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), "detection", params, ".pt")
    return store.cached_model(path, params, train, ProbabilityClassifier)


def emulate(model, c: np.ndarray, t: np.ndarray, seed: int) -> np.ndarray:
    """One emulated Δμ (N, 3) per row from the cWGAN-GP or the flow (which model Δμ divided by
    :func:`error_scale`), seeded."""
    torch.manual_seed(seed)
    if isinstance(model, ConditionalWGAN):
        scaled = model.sample(c, t)
    else:
        scaled = model.sample(1, np.concatenate([c, t], 1))[0].numpy()
    return scaled * error_scale(c, t)


def fixed_input_injections(cfg: Config, seed: int, progress: bool = True) -> dict[str, np.ndarray]:
    """Repeat injections of single test galaxies at single positions: p(Δμ | fixed input).

    ``fixed.n_galaxies`` galaxies of the test split with true i in ``fixed.mag_range`` (mostly
    detected) are each injected ``fixed.n_injections`` times at the position of one of their test
    injections. Returns ``galaxy`` (index per row), ``conditions`` (n, 6), ``truths`` (n, 3),
    ``dmu`` (n, 3), ``detected`` (n,). Needs the simulator (``data.source`` None).
    """
    if cfg.data.source is not None:
        raise ValueError("repeat injections at fixed input need the simulator (data.source None)")
    fx = cfg.fixed
    if len(fx.mag_range) != 2:
        raise ValueError(
            f"fixed.mag_range must be (faintest, brightest) bounds, got {fx.mag_range}"
        )

    def build() -> dict[str, np.ndarray]:
        frame = injections(cfg, seed, progress=False)
        test = frame[(frame["split"] == "test") & frame["true_mag_i"].between(*fx.mag_range)]
        first = test.drop_duplicates("deep_id")
        rng = np.random.default_rng([seed, 33])
        chosen = first.iloc[rng.choice(len(first), fx.n_galaxies, replace=False)]
        footprint, deep, parts = SurveyFootprint(seed), deep_catalogue(cfg.data, seed), []
        bar = tqdm(chosen.itertuples(), total=len(chosen), desc="fixed input", disable=not progress)
        for g, row in enumerate(bar):
            galaxy = deep.take(np.flatnonzero(deep.deep_id == row.deep_id))
            out = inject_fixed(galaxy, row.ra, row.dec, fx.n_injections, seed=seed * 1000 + g,
                               footprint=footprint, batch_size=cfg.data.batch_size)  # fmt: skip
            out = with_derived_columns(out)
            out["galaxy"] = g
            parts.append(out)
        rows = pd.concat(parts, ignore_index=True)
        return {
            "galaxy": rows["galaxy"].to_numpy(), "conditions": rows[CONDITIONS].to_numpy(),
            "truths": rows[TRUTHS].to_numpy(), "dmu": rows[DELTAS].to_numpy(),
            "detected": rows["detected"].to_numpy().astype(bool),
        }  # fmt: skip

    path = paths.dataset_dir(STUDY)
    return store.cached_arrays(path, "fixed_input", key(cfg, "fixed_input", seed), build)


def deep_catalogue(data: DataConfig, seed: int) -> DeepCatalogue:
    """The deep-field catalogue exactly as :func:`run_injections` drew it (its first draws)."""
    n_deep = -(-data.n_injections // data.repeats)
    return sample_deep_catalogue(n_deep, np.random.default_rng(seed))


def halves_by_galaxy(deep_id: np.ndarray, seed: int) -> np.ndarray:
    """True for the rows of half A, False for half B: one coin per distinct deep galaxy.

    Ids may be any sortable values (integers of any size, strings); one draw per distinct id.
    """
    unique, inverse = np.unique(np.asarray(deep_id), return_inverse=True)
    return np.random.default_rng([seed, 34]).random(len(unique))[inverse.ravel()] < 0.5


def robust_summary(delta: np.ndarray) -> dict[str, float]:
    """Median (bias), 1.4826 × MAD (robust width) and the fraction beyond 3 robust widths."""
    med = np.median(delta)
    width = 1.4826 * np.median(np.abs(delta - med))
    return {"bias": med, "width": width, "tail": float(np.mean(np.abs(delta - med) > 3 * width))}


def condition_bins(c: np.ndarray, t: np.ndarray, band: int, edges: dict) -> np.ndarray:
    """Bin label per row for ``band``: true-magnitude quartile × PSF half × sky-noise half.

    ``edges`` (from :func:`bin_edges`) fixes the bin boundaries so every sample uses the same.
    """
    mag = np.searchsorted(edges["mag"][band], t[:, band])
    psf = (c[:, band] > edges["psf"][band]).astype(int)
    sky = (c[:, 3 + band] > edges["sky"][band]).astype(int)
    return mag * 4 + psf * 2 + sky


def bin_edges(c: np.ndarray, t: np.ndarray) -> dict:
    """Quartiles of the true magnitude and medians of PSF and sky noise, per band."""
    return {
        "mag": [np.quantile(t[:, b], [0.25, 0.5, 0.75]) for b in range(3)],
        "psf": [np.median(c[:, b]) for b in range(3)],
        "sky": [np.median(c[:, 3 + b]) for b in range(3)],
    }


def binned_summary(
    x: np.ndarray, delta: np.ndarray, centres: np.ndarray, half_width: float = 0.25,
    min_count: int = 30,
) -> pd.DataFrame:  # fmt: skip
    """:func:`robust_summary` of ``delta`` in windows ``|x − centre| < half_width``; NaN rows
    where fewer than ``min_count`` points fall in a window. Index: the centres."""
    x, delta = np.asarray(x), np.asarray(delta)
    rows = []
    for c in centres:
        sel = np.abs(x - c) < half_width
        empty = {"bias": np.nan, "width": np.nan, "tail": np.nan}
        rows.append(
            {**(robust_summary(delta[sel]) if sel.sum() >= min_count else empty), "n": sel.sum()}
        )
    return pd.DataFrame(rows, index=pd.Index(centres, name="centre"))
