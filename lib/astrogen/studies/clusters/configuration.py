"""Study 2 configuration: clusters, reference posteriors, cINNs, MLP ensembles, maps, targets.

Defaults are the ``default`` profile (the seed's cINN on 10⁶ simulated clusters, sized for a
2-core CPU); ``PROFILES`` holds the ``smoke`` and ``full`` overrides. ``data.source`` ``None`` is
the simulator; a directory with the seed's ``X.csv`` / ``Y.csv`` (``meta.csv`` optional) reads a
real table instead, and the files' content fingerprint joins the keys of what is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from astrogen.config import Artifact, Target, bounds, setting


@dataclass(frozen=True)
class DataConfig:
    """The scalar training set and the held-out calibration set: simulated, or a real table."""

    n_train: int = setting(1_000_000, minimum=100, doc="simulated training clusters")
    n_test: int = setting(
        4_000, minimum=10, doc="held-out calibration clusters (real data: at most a fifth)"
    )
    source: str | None = setting(
        None, doc="None: the simulator; else a directory with X.csv, Y.csv (meta.csv optional)"
    )
    x_columns: tuple[str, ...] | None = setting(
        None, doc="real data: observable columns (None: the simulator's names)"
    )
    y_columns: tuple[str, ...] | None = setting(
        None, doc="real data: target columns (None: the simulator's names)"
    )
    id_column: str | None = setting(
        None, doc="real data: join X.csv and Y.csv on this column instead of row order"
    )
    embeddings: str | None = setting(
        None, doc="real data: image embeddings .npy (N, E) in the directory, appended to x"
    )
    embedding_names: str | None = setting(
        None, doc="real data: .npy of the file names the embedding rows belong to"
    )


@dataclass(frozen=True)
class ReferenceConfig:
    """Exact reference posteriors of held-out clusters by ensemble MCMC."""

    n_reference: int = setting(500, minimum=1, doc="held-out clusters with a reference posterior")
    walkers: int = setting(48, minimum=4, doc="differential-evolution walkers per cluster")
    steps: int = setting(3_000, minimum=2, doc="ensemble steps per cluster")
    burn: int = setting(1_000, minimum=0, doc="steps discarded as burn-in")
    thin_divisor: int = setting(
        100, minimum=1, doc="keep every (steps // thin_divisor)-th step of each walker"
    )
    importance_draws: int = setting(
        20_000, minimum=1, doc="prior draws per cluster the walkers are resampled from"
    )
    chunk: int = setting(250, minimum=1, doc="clusters sampled together (one RNG pass each)")


@dataclass(frozen=True)
class CINNConfig:
    """The seed's cINN: FrEIA GLOW blocks; a conv summary for the jointly trained map variant."""

    blocks: int = setting(12, minimum=1, doc="GLOW coupling blocks")
    hidden: int = setting(128, minimum=1, doc="hidden units of each coupling subnet")
    clamp: float = setting(2.0, minimum=0.0, doc="soft clamp of the coupling scales")
    summary_dim: int = setting(16, minimum=1, doc="features of the joint map summary network")
    summary_width: int = setting(8, minimum=1, doc="channels of its first convolution")


@dataclass(frozen=True)
class TrainingConfig:
    """Training of the scalar cINN on the full training set (best validation NLL kept)."""

    epochs: int = setting(6, minimum=1)
    batch_size: int = setting(2048, minimum=1)
    lr: float = setting(2e-3, minimum=0.0, doc="Adam learning rate, cosine-decayed")
    val_fraction: float = setting(0.1, minimum=0.0, maximum=0.5)
    patience: int = setting(15, minimum=1, doc="epochs without a validation gain before stopping")


@dataclass(frozen=True)
class MapTrainingConfig:
    """Training of the three map cINNs: ~50× fewer examples, so smaller batches, more epochs."""

    epochs: int = setting(80, minimum=1)
    batch_size: int = setting(256, minimum=1)
    lr: float = setting(5e-4, minimum=0.0, doc="Adam learning rate, cosine-decayed")
    val_fraction: float = setting(0.1, minimum=0.0, maximum=0.5)
    patience: int = setting(15, minimum=1, doc="epochs without a validation gain before stopping")


@dataclass(frozen=True)
class MLPConfig:
    """The seed's MLP ensemble: members differ by seed, MSE then MAE, median of members."""

    members: int = setting(7, minimum=1)
    hidden: int = setting(128, minimum=1, doc="hidden units per layer")
    layers: int = setting(3, minimum=1, doc="hidden layers")
    epochs_mse: int = setting(10, minimum=1, doc="epochs of the MSE phase")
    epochs_mae: int = setting(10, minimum=1, doc="epochs of the MAE phase")
    n_train: int = setting(100_000, minimum=10, doc="first training clusters the MLPs see")
    batch_size: int = setting(512, minimum=1)
    lr: float = setting(1e-3, minimum=0.0)
    val_fraction: float = setting(0.1, minimum=0.0, maximum=0.5)


@dataclass(frozen=True)
class MapsConfig:
    """X-ray maps of fresh clusters (β-model halo, subcluster, Poisson noise)."""

    n_maps: int = setting(20_000, minimum=10, doc="clusters with a map")
    size: int = setting(64, minimum=16, doc="pixels per side")
    exposure: float = setting(1.0, minimum=0.0, doc="exposure relative to the default depth")
    train_fraction: float = setting(0.8, minimum=0.1, maximum=0.95, doc="maps trained on")


@dataclass(frozen=True)
class AutoencoderConfig:
    """The self-supervised map embedding: a conv autoencoder on the training maps only."""

    latent: int = setting(16, minimum=1, doc="size of the embedding")
    width: int = setting(8, minimum=1, doc="channels of the first convolution")
    epochs: int = setting(8, minimum=1)
    batch_size: int = setting(128, minimum=1)
    lr: float = setting(1e-3, minimum=0.0)
    val_fraction: float = setting(0.1, minimum=0.0, maximum=0.5)
    patience: int = setting(5, minimum=1)


@dataclass(frozen=True)
class EvaluationConfig:
    """Scoring only: no artifact reads these."""

    n_c2st: int = setting(24, minimum=1, doc="reference clusters with a classifier two-sample test")
    c2st_draws: int = setting(
        2_000, minimum=10, doc="draws per side of each C2ST (at most the reference's)"
    )
    posterior_draws: int = setting(500, minimum=10, doc="cINN draws per held-out cluster")
    n_boot: int = setting(500, minimum=10, doc="bootstrap resamples of the sensitivity noise")


@dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    reference: ReferenceConfig = ReferenceConfig()
    cinn: CINNConfig = CINNConfig()
    training: TrainingConfig = TrainingConfig()
    map_training: MapTrainingConfig = MapTrainingConfig()
    mlp: MLPConfig = MLPConfig()
    maps: MapsConfig = MapsConfig()
    autoencoder: AutoencoderConfig = AutoencoderConfig()
    evaluation: EvaluationConfig = EvaluationConfig()


# With data.source set, a real table has no exact posteriors: its runs record under <notebook>_real, whose targets
# assert only what needs no ground truth (see TARGETS).
OWN_DATA_SUFFIX = "_real"

PROFILES = {
    "smoke": {
        "data.n_train": 6_000,
        "data.n_test": 300,
        "reference.n_reference": 24,
        "reference.walkers": 16,
        "reference.steps": 300,
        "reference.burn": 100,
        "cinn.blocks": 4,
        "cinn.hidden": 32,
        "training.epochs": 2,
        "training.batch_size": 512,
        "map_training.epochs": 2,
        "mlp.hidden": 32,
        "mlp.epochs_mse": 1,
        "mlp.epochs_mae": 1,
        "mlp.n_train": 3_000,
        "maps.n_maps": 1_000,
        "autoencoder.epochs": 1,
        "evaluation.n_c2st": 4,
        "evaluation.posterior_draws": 200,
    },
    "full": {
        "data.n_train": 2_000_000,
        "data.n_test": 10_000,
        "reference.n_reference": 2_000,
        "reference.walkers": 64,
        "reference.steps": 8_000,
        "reference.burn": 2_000,
        "training.epochs": 250,
        "mlp.epochs_mse": 40,
        "mlp.epochs_mae": 40,
        "mlp.n_train": 500_000,
        "maps.n_maps": 100_000,
        "autoencoder.epochs": 40,
        "map_training.epochs": 200,
        "evaluation.n_c2st": 100,
        "evaluation.posterior_draws": 2_000,
    },
}

# Fields read only when scoring or plotting: changing one rebuilds nothing.
EVALUATION_ONLY = (
    "evaluation.n_c2st",
    "evaluation.c2st_draws",
    "evaluation.posterior_draws",
    "evaluation.n_boot",
)

_CINN = ("cinn.blocks", "cinn.hidden", "cinn.clamp")
# Cached artifacts and what they are built from; bump a version when its builder changes.
# A real table's content fingerprint joins the keys of those that read ``data`` (``source=...``).
ARTIFACTS = {
    "dataset": Artifact(reads=("data",)),  # real tables are read, not cached
    "reference": Artifact(reads=("reference",)),
    "cinn_scalars": Artifact(reads=("data", *_CINN, "training")),
    "mlp": Artifact(reads=("data", "mlp")),  # + the dropped observable
    "maps": Artifact(reads=("maps",)),
    "autoencoder": Artifact(reads=("maps", "autoencoder")),
    "cinn_maps_scalars": Artifact(reads=("maps", *_CINN, "map_training")),
    "cinn_maps_embedding": Artifact(reads=("maps", "autoencoder", *_CINN, "map_training")),
    "cinn_maps_joint": Artifact(
        reads=("maps", *_CINN, "cinn.summary_dim", "cinn.summary_width", "map_training")
    ),
}

ALL = ("smoke", "default", "full")
_MATCHES_EXACT = "the cINN matches the exact posterior"

TARGETS: dict[str, tuple[Target, ...]] = {
    "21_clusters_simulation": (
        # Simulated observables follow the exact likelihood at any size.
        *bounds(
            lower={"likelihood_ks_p_min": 1e-3},
            profiles=ALL,
            why="KS test per observable at a 1-in-1000 false alarm: the likelihood is exact",
        ),
        *bounds(
            upper={"reference_coverage_max_dev": 0.35, "rhat_p99": 1.5},
            profiles=("smoke",),
            why="24 clusters, 300 steps: sane numbers only",
        ),
        *bounds(
            lower={"ess_min": 100.0},
            upper={"reference_coverage_max_dev": 0.08, "rhat_p99": 1.05},
            profiles=("default",),
            why="R̂ < 1.05 and ESS ≥ 100, the usual convergence checks; coverage on 500 "
            "clusters scatters by ≈ 0.022 at the 50 % level, 0.08 is ≈ 3.6 standard errors",
        ),
        *bounds(
            lower={"ess_min": 200.0},
            upper={"reference_coverage_max_dev": 0.05, "rhat_p99": 1.03},
            profiles=("full",),
            why="longer chains on 2 000 clusters: ≈ 0.011 standard error at the 50 % level",
        ),
        Target("ess_median", profiles=ALL, why="reported"),
        Target("frac_rhat_below_1p05", profiles=ALL, why="reported"),
    ),
    "22_clusters_posteriors": (
        *bounds(
            upper={"coverage_max_dev": 0.6, "tarp_max_dev": 0.6},
            profiles=("smoke",),
            why="two epochs on 6 000 clusters: sane numbers only",
        ),
        *bounds(
            upper={"c2st_accuracy_mean": 0.60},
            why=_MATCHES_EXACT + ": cINN draws hard to tell from exact posterior draws",
        ),
        *bounds(
            upper={"coverage_max_dev": 0.03, "tarp_max_dev": 0.05},
            why=_MATCHES_EXACT + ": central intervals within ±0.03 of nominal, TARP within 0.05",
        ),
        *bounds(
            upper={"mae_ratio_cinn_max": 1.10},
            why=_MATCHES_EXACT + ": the posterior median within 10 % of the Bayes-optimal MAE",
        ),
        Target("c2st_accuracy_max", why="the worst-matched cluster, reported"),
        Target("mae_ratio_mlp_max", why="the seed's MLP ensemble, reported beside the cINN"),
    ),
    "23_clusters_sensitivity": (
        # smoke: 3 000 clusters and one epoch per phase are too few to recover the structure
        *bounds(
            upper={"n_targets_top_observable_uninformative": 0.0, "null_pairs_over_2sigma": 0.0},
            why=_MATCHES_EXACT + ": the ablation recovers the simulator's dependency structure",
        ),
        Target("null_pairs_max_abs_delta_over_sigma", why="reported"),
    ),
    "24_clusters_maps": (
        *bounds(
            upper={"coverage_max_dev_maps_embedding": 0.6},
            profiles=("smoke",),
            why="two epochs on 800 maps: sane numbers only",
        ),
        *bounds(
            lower={"nlp_gain_embedding": 0.1},
            upper={"coverage_max_dev_maps_embedding": 0.03},
            why="a likelihood ratio e^0.1 ≈ 1.1 per cluster, well beyond the paired noise, "
            "without losing calibration",
        ),
        Target("nlp_gain_joint", why="the jointly trained summary network, reported"),
        Target("coverage_max_dev_maps_joint", why="reported"),
        Target("probe_r2_projected_separation", why="what the latent knows, reported"),
    ),
}
