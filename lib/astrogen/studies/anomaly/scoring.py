r"""Study 4, notebook 45: one-class per-image scores, the suite-level rating, the explanation.

Everything here is fitted on observed images only: GANomaly (notebook 42) and the feature flow
and SimCLR encoder on the first ``scores.n_fit`` images of the sky's train split; the complexity
correction and every calibration on the validation split; the default family is chosen on
generic development corruptions (:mod:`astrogen.corruptions`) of validation images. The test
split and the seven suites are only ever scored.

Families (:data:`FAMILIES`), each a raw score (larger = less like the sky) and a calibrated
p-value (:func:`astrogen.models.one_class.upper_p` against the validation split):
``ganomaly`` A(x); ``complexity`` log A − (a + b L); ``features`` −log q of properties measured
on the stretched light the cutout holds; ``flux_features`` the same on linear flux, the display
stretch undone (:mod:`astrogen.stretch`: sizes, concentrations and magnitudes of the light
itself, which the asinh stretch compresses); ``embedding`` kNN cosine distance of SimCLR
embeddings; ``combined`` Fisher's −2 Σ log p over the other five, calibrated on leave-one-out
validation p-values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from astrogen import paths, store
from astrogen.corruptions import CORRUPTIONS, corrupt
from astrogen.diagnostics.two_sample import rate_simulation
from astrogen.image_properties import COLUMNS, GROUPS, LOG_COLUMNS, compressed_bits
from astrogen.image_properties import measure_properties as _measure
from astrogen.models.flows import DensityEstimator
from astrogen.models.ganomaly import GANomaly
from astrogen.models.one_class import (
    ContrastiveEncoder,
    EmbeddingScorer,
    FeatureDensity,
    complexity_corrected,
    fisher_statistic,
    fit_complexity_correction,
    fit_contrastive,
    fit_feature_density,
    leave_one_out_p,
    upper_p,
)
from astrogen.stretch import LuptonStretch
from astrogen.studies.anomaly import STUDY, ganomaly_for, key, sky, to_network
from astrogen.studies.anomaly.configuration import FAMILIES, Config

BASE = FAMILIES[:-1]
FLUX = "flux_"  # prefix of the properties measured on linear flux
FLUX_COLUMNS = tuple(FLUX + c for c in COLUMNS)
FLUX_LOG_COLUMNS = tuple(FLUX + c for c in LOG_COLUMNS)
# What each suite changes by construction (sims.anomaly.SUITES), as groups of
# image_properties.GROUPS; declared before any suite is measured.
EXPECTED = {
    "compact": ("size",),
    "bulgy": ("concentration", "colour"),
    "colours": ("colour",),
    "particles": ("structure",),
    "psf": ("size", "concentration"),
    "noise": ("background",),
}


def stretch_of(cfg: Config) -> LuptonStretch:
    """The display stretch of the cutouts, as the configuration declares it."""
    d = cfg.data
    return LuptonStretch(q=d.stretch_q, soft=d.stretch_soft, scales=d.stretch_scales)


def measure(pixels: np.ndarray, stretch: LuptonStretch) -> pd.DataFrame:
    """Measured properties of 8-bit RGB images (N, 3, 64, 64): :data:`COLUMNS` on the stretched
    light, :data:`FLUX_COLUMNS` on the linear flux with ``stretch`` undone, and ``complexity``
    (compressed bits per sub-pixel)."""
    table = _measure(pixels)
    flux = _measure(pixels, stretch=stretch).add_prefix(FLUX)
    table = pd.concat([table, flux], axis=1)
    table["complexity"] = compressed_bits(pixels)
    return table


def cached_measure(cfg: Config, seed: int, name: str, pixels: np.ndarray, of: dict) -> pd.DataFrame:
    """:func:`measure`, cached under the key of the image set ``of`` it was measured on."""
    k = key(cfg, "features", seed, set=name, of=of)

    def build() -> dict[str, np.ndarray]:
        return {c: v.to_numpy(float) for c, v in measure(pixels, stretch_of(cfg)).items()}

    arrays = store.cached_arrays(paths.dataset_dir(STUDY), f"features_{name}", k, build)
    return pd.DataFrame(arrays)


def fit_set(cfg: Config, seed: int) -> np.ndarray:
    """The observed images the feature flow and SimCLR learn: the first ``scores.n_fit`` of the
    sky's train split."""
    return sky(cfg, seed)["train"][0][: cfg.scores.n_fit]


def feature_flow(
    cfg: Config, seed: int, table: pd.DataFrame, flux: bool = False
) -> tuple[FeatureDensity, dict]:
    """The feature density fitted on ``table`` (properties of :func:`fit_set`), cached; on the
    linear-flux properties if ``flux``."""
    s = cfg.scores
    name = "flux_feature_flow" if flux else "feature_flow"
    columns, log_columns = (FLUX_COLUMNS, FLUX_LOG_COLUMNS) if flux else (COLUMNS, LOG_COLUMNS)
    k = key(cfg, name, seed)

    def train():
        density, n_dropped = fit_feature_density(
            table, columns, log_columns, transforms=s.flow_transforms, hidden=s.flow_hidden,
            epochs=s.flow_epochs, batch_size=s.flow_batch_size, lr=s.flow_lr,
            patience=s.flow_patience, seed=seed,
        )  # fmt: skip
        history = density.estimator.history.to_dict()
        return density.estimator, density.estimator.config, {"dropped": n_dropped,
                                                             "history": history}  # fmt: skip

    path = store.artifact_path(paths.checkpoint_dir(STUDY), name, k, ".pt")
    estimator, record = store.cached_model(path, k, train, DensityEstimator.from_config)
    return FeatureDensity(estimator, columns, log_columns), record


def embedding(cfg: Config, seed: int) -> tuple[ContrastiveEncoder, dict]:
    """The SimCLR encoder trained on :func:`fit_set` (validation split for model selection)."""
    s = cfg.scores
    k = key(cfg, "embedding", seed)

    def train():
        sets = sky(cfg, seed)
        model = fit_contrastive(
            to_network(fit_set(cfg, seed)), to_network(sets["val"][0]),
            width=s.embed_width, dim=s.embed_dim, epochs=s.embed_epochs,
            batch_size=s.embed_batch_size, lr=s.embed_lr, temperature=s.temperature,
            max_shift=s.max_shift, seed=seed,
        )  # fmt: skip
        return model, model.config, {"history": model.history.to_dict()}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), "embedding", k, ".pt")
    return store.cached_model(path, k, train, ContrastiveEncoder)


@dataclass
class Scorers:
    """Every family's scorer with its observed calibration reference.

    ``reference[f]``: raw validation scores of family f; ``combined`` is calibrated on the
    Fisher statistics of leave-one-out validation p-values.
    """

    ganomaly: GANomaly
    coefficients: dict
    density: FeatureDensity
    flux_density: FeatureDensity
    stretch: LuptonStretch
    encoder: ContrastiveEncoder
    knn: EmbeddingScorer
    reference: dict[str, np.ndarray]

    def raw(self, pixels: np.ndarray, table: pd.DataFrame | None = None) -> pd.DataFrame:
        """Raw scores of the five base families, (N, 5); ``table``: :func:`measure` output."""
        table = measure(pixels, self.stretch) if table is None else table
        x = to_network(pixels)
        a = self.ganomaly.score(x)
        return pd.DataFrame({
            "ganomaly": a,
            "complexity": complexity_corrected(a, table["complexity"], self.coefficients),
            "features": self.density.score(table),
            "flux_features": self.flux_density.score(table),
            "embedding": self.knn.score(self.encoder.embed(x)),
        })  # fmt: skip

    def score(self, pixels: np.ndarray, table: pd.DataFrame | None = None) -> pd.DataFrame:
        """Raw score and calibrated p-value of every family, (N, 2 × 6): columns ``<family>``
        and ``p_<family>``. An image's row is the same alone or in any batch."""
        raw = self.raw(pixels, table)
        out = raw.copy()
        for f in BASE:
            out[f"p_{f}"] = upper_p(raw[f], self.reference[f])
        out["combined"] = fisher_statistic(out[[f"p_{f}" for f in BASE]].to_numpy())
        out["p_combined"] = upper_p(out["combined"], self.reference["combined"])
        return out


def fit_scorers(cfg: Config, seed: int, val_table: pd.DataFrame, fit_table: pd.DataFrame):
    """All families, fitted on observed images only (module docstring); with a record of what
    each fit cost and found."""
    sets = sky(cfg, seed)
    model, gan_record = ganomaly_for(cfg, seed)
    val_pixels = sets["val"][0]
    a_val = model.score(to_network(val_pixels))
    coefficients = fit_complexity_correction(a_val, val_table["complexity"])
    density, flow_record = feature_flow(cfg, seed, fit_table)
    flux_density, flux_record = feature_flow(cfg, seed, fit_table, flux=True)
    encoder, embed_record = embedding(cfg, seed)
    knn = EmbeddingScorer(encoder.embed(to_network(fit_set(cfg, seed))), cfg.scores.k_neighbours)
    scorers = Scorers(model, coefficients, density, flux_density, stretch_of(cfg), encoder, knn, {})
    raw = scorers.raw(val_pixels, val_table)
    scorers.reference = {f: raw[f].to_numpy() for f in BASE}
    loo = np.stack([leave_one_out_p(raw[f]) for f in BASE], 1)
    scorers.reference["combined"] = fisher_statistic(loo)
    record = {"ganomaly": gan_record, "flow": flow_record, "flux_flow": flux_record,
              "embedding": embed_record, "coefficients": coefficients}  # fmt: skip
    return scorers, record


def dev_sets(cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """The development corruptions, each applied to the first ``scores.n_dev`` validation images."""
    base = sky(cfg, seed)["val"][0][: cfg.scores.n_dev]
    return {name: corrupt(name, base, seed) for name in CORRUPTIONS}


def auroc(observed: np.ndarray, other: np.ndarray) -> float:
    """P(score of ``other`` > score of ``observed``) (+½ ties); ±∞ scores are ranked too."""
    x, y = np.asarray(other, float), np.asarray(observed, float)
    ranks = stats.rankdata(np.r_[x, y])
    return float((ranks[: len(x)].sum() - len(x) * (len(x) + 1) / 2) / (len(x) * len(y)))


def choose_default(dev_auroc: pd.DataFrame, choice: str = "auto") -> str:
    """The default family: ``choice`` itself, or for ``"auto"`` the family (row) with the highest
    mean AUROC over the development corruptions (columns); ties go to the earlier family."""
    if choice != "auto":
        return choice
    means = dev_auroc.mean(axis=1)
    return str(means.index[int(np.argmax(means.to_numpy()))])


def explained_columns(default: str) -> tuple[str, ...]:
    """The properties an explanation looks at: those the default family scores when it is
    ``flux_features``, else the stretched light's (fixed with the default, before any suite)."""
    return FLUX_COLUMNS if default == "flux_features" else COLUMNS


def explain(
    test_table: pd.DataFrame, suite_table: pd.DataFrame, columns: tuple[str, ...] = COLUMNS
) -> pd.Series:
    """Kolmogorov–Smirnov distance of every measured property in ``columns`` between a suite
    and the sky (non-finite values dropped), largest first."""
    out = {}
    for c in columns:
        a, b = test_table[c].to_numpy(float), suite_table[c].to_numpy(float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        out[c] = stats.ks_2samp(a, b).statistic if len(a) and len(b) else np.nan
    return pd.Series(out).sort_values(ascending=False)


def group_of(column: str) -> str:
    """The :data:`astrogen.image_properties.GROUPS` name a property (stretched or flux) belongs
    to."""
    column = column.removeprefix(FLUX)
    return next(g for g, cols in GROUPS.items() if column in cols)


def rating_inputs(table: pd.DataFrame, medians: pd.Series) -> np.ndarray:
    """Properties as the two-sample classifier sees them: log₁₀ radii, NaN → observed median."""
    x = table[list(COLUMNS)].copy()
    for c in LOG_COLUMNS:
        x[c] = np.log10(x[c].where(x[c] > 0))
    return x.fillna(medians).to_numpy(float)


def rate(cfg: Config, seed: int, simulated: pd.DataFrame, observed: pd.DataFrame) -> dict:
    """:func:`astrogen.diagnostics.two_sample.rate_simulation` on measured properties."""
    medians = pd.DataFrame(rating_inputs(observed, pd.Series(dtype=float)), columns=COLUMNS)
    medians = medians.median()
    t = cfg.two_sample
    return rate_simulation(
        rating_inputs(simulated, medians), rating_inputs(observed, medians),
        test_fraction=t.test_fraction, hidden=t.hidden, layers=t.layers, epochs=t.epochs,
        batch_size=t.batch_size, lr=t.lr, patience=t.patience, seed=seed,
    ).as_dict()  # fmt: skip


def batch_difference(scorers: Scorers, pixels: np.ndarray) -> dict[str, float]:
    """Largest |difference| per family between scoring each image alone and in one batch: of
    the raw score (``<family>``; float32 networks round differently with the batch's size) and
    of the calibrated p-value (``p_<family>``)."""
    batch = scorers.score(pixels)
    alone = pd.concat([scorers.score(pixels[i : i + 1]) for i in range(len(pixels))],
                      ignore_index=True)  # fmt: skip
    columns = [*FAMILIES, *(f"p_{f}" for f in FAMILIES)]
    return {c: float(np.max(np.abs(batch[c].to_numpy() - alone[c].to_numpy()))) for c in columns}


def worst(scores: pd.DataFrame, family: str, n: int = 10) -> pd.DataFrame:
    """The ``n`` images with the smallest p-value of ``family`` (ties: larger raw score first)."""
    order = np.lexsort((-scores[family].to_numpy(), scores[f"p_{family}"].to_numpy()))
    return scores.iloc[order[:n]]
