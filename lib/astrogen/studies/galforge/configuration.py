"""Study 5 configuration: mock galaxies, the image autoencoder, four flow families, their targets.

Defaults are the ``default`` profile (90 galaxies of 1 500–12 000 stars, 64-pixel images, sized for
a 2-core CPU); ``PROFILES`` holds the ``smoke`` and ``full`` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass

from astrogen.config import Artifact, Target, bounds, setting

FAMILIES = ("galacticflow", "sospf", "nice", "maf")


@dataclass(frozen=True)
class DataConfig:
    """The population: mock galaxies from the simulator, or a folder of real ones."""

    n_galaxies: int = setting(90, minimum=5, doc="mock galaxies, split 70/10/20 by galaxy")
    stars_min: int = setting(1_500, minimum=1, doc="stars of the lightest galaxy (10^7.5 M☉)")
    stars_max: int = setting(12_000, minimum=1, doc="stars of the heaviest (10^11 M☉), ∝ M^0.3")
    image_size: int = setting(64, minimum=16, doc="pixels per side (the seed: 448)")
    projections: int = setting(16, minimum=1, doc="random orientations rendered per galaxy")
    source: str | None = setting(
        None,
        doc="None: the simulator; or a folder of real galaxies (galaxies/<name>.npz, "
        "images/<name>/*.png; see astrogen.io.galforge)",
    )


@dataclass(frozen=True)
class AutoencoderConfig:
    """The conv autoencoder on the training galaxies' images; its latent conditions the flows.

    Colour channels weigh 3× in amplitude (``LuminosityColourNorm``) so the latent keeps colour
    gradients; cross-validated probes of the gradient over seed 0's galaxies, per weight:
    1 → R² 0.05, 2 → 0.43 and 0.50 (two seeds), 3 → 0.53, 4 → 0.43, 8 → 0.28 (the disk scale
    then degrades).
    """

    latent: int = setting(16, minimum=1, doc="latent dimensions (flow conditions z0 … z(L−1))")
    width: int = setting(16, minimum=1, doc="channels of the first conv block")
    colour_weight: float = setting(3.0, minimum=0.0, doc="amplitude weight of the colours")
    epochs: int = setting(60, minimum=1)
    batch_size: int = setting(64, minimum=1)
    lr: float = setting(1e-3, minimum=0.0)
    patience: int = setting(5, minimum=1, doc="epochs without improvement before stopping")
    val_fraction: float = setting(
        0.1, minimum=0.0, maximum=1.0, doc="share of training images held out for stopping"
    )


@dataclass(frozen=True)
class FlowConfig:
    """The conditional flows q(star | conditions): the same budget for every family."""

    transforms: int = setting(4, minimum=1)
    hidden: int = setting(64, minimum=1, doc="hidden units per layer")
    layers: int = setting(2, minimum=1, doc="hidden layers per conditioner")
    epochs: int = setting(24, minimum=1, doc="the equal training budget of every family")
    batch_size: int = setting(1024, minimum=1)
    patience: int | None = setting(
        None, minimum=1, doc="epochs without validation improvement; None: max(3, epochs // 4)"
    )
    latent_per_projection: bool = setting(
        True,
        doc="each training star carries the latent of a random projection of its galaxy "
        "(False: the galaxy's mean latent)",
    )


@dataclass(frozen=True)
class TuningConfig:
    """Short runs over a grid of learning rates; each family trains at its best rate."""

    epochs: int = setting(2, minimum=1, doc="epochs per learning-rate trial")
    lr_grid: tuple[float, ...] = setting((3e-4, 1e-3, 3e-3), minimum=0.0)


@dataclass(frozen=True)
class AblationConfig:
    """Replicates of the latent ablation (each seed its own population, autoencoder, flows)."""

    seeds: int = setting(3, minimum=1, doc="replicates, seeds seed … seed + seeds − 1")


@dataclass(frozen=True)
class EvaluationConfig:
    """Scoring on the held-out galaxies (reads no artifact's configuration)."""

    stars: int = setting(3_000, minimum=10, doc="true stars per test galaxy (and as many samples)")
    floor_draws: int = setting(48, minimum=1, doc="prior draws of the KL floor's mixture")
    floor_stars: int = setting(2_000, minimum=10, doc="true stars per test galaxy for the KL floor")
    c2st_floor_draws: int = setting(64, minimum=1, doc="prior draws of the C2ST floor's mixture")
    projection_mixture: bool | None = setting(
        None,
        doc="a held-out galaxy's density: True the equal mixture of q(star | parameters, z_k) "
        "over its projections' latents z_k, False q at its mean latent, None whichever gives the "
        "best family the lower NLL on the validation galaxies",
    )


@dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    autoencoder: AutoencoderConfig = AutoencoderConfig()
    flow: FlowConfig = FlowConfig()
    tuning: TuningConfig = TuningConfig()
    ablation: AblationConfig = AblationConfig()
    evaluation: EvaluationConfig = EvaluationConfig()


# With data.source set, a folder of real galaxies has no exact density: its runs record under <notebook>_folder, whose targets
# assert only what needs no ground truth (see TARGETS).
OWN_DATA_SUFFIX = "_folder"

PROFILES = {
    "smoke": {
        "data.n_galaxies": 12,
        "data.stars_min": 300,
        "data.stars_max": 1_500,
        "data.image_size": 32,
        "data.projections": 2,
        "autoencoder.width": 8,
        "autoencoder.epochs": 2,
        "flow.transforms": 2,
        "flow.hidden": 32,
        "flow.epochs": 2,
        "flow.batch_size": 512,
        "tuning.epochs": 1,
        "tuning.lr_grid": (1e-3, 3e-3),
        "ablation.seeds": 1,
        "evaluation.stars": 300,
    },
    "full": {
        "data.stars_min": 10_000,
        "data.stars_max": 200_000,
        "data.image_size": 448,
        "data.projections": 4,
        "autoencoder.width": 32,
        "autoencoder.epochs": 200,
        "flow.transforms": 8,
        "flow.hidden": 256,
        "flow.epochs": 60,
        "flow.batch_size": 2048,
        "tuning.epochs": 8,
        "tuning.lr_grid": (1e-4, 3e-4, 1e-3, 3e-3),
        "ablation.seeds": 5,
        "evaluation.stars": 20_000,
    },
}

# Fields read only when scoring or plotting: they change metrics, never an artifact. The number of
# ablation replicates changes which artifacts are built, not any artifact's key.
EVALUATION_ONLY = (
    "evaluation.stars",
    "evaluation.floor_draws",
    "evaluation.floor_stars",
    "evaluation.c2st_floor_draws",
    "evaluation.projection_mixture",
)

# What a flow trains with besides its epochs (tuning trials run for ``tuning.epochs``).
_FLOW_TRAINING = (
    "flow.transforms",
    "flow.hidden",
    "flow.layers",
    "flow.batch_size",
    "flow.patience",
    "flow.latent_per_projection",
)
# Cached artifacts and what they are built from; bump a version when its builder changes. A folder
# of real galaxies joins every key with its content fingerprint (``source=...``, files, bytes,
# SHA-256), and its population is read, not cached.
ARTIFACTS = {
    "galaxies": Artifact(reads=("data",)),
    "autoencoder": Artifact(reads=("data", "autoencoder")),
    # + family, learning rate of the trial
    "tuning_flow": Artifact(reads=("data", "autoencoder", *_FLOW_TRAINING, "tuning.epochs")),
    # + family, conditions (latent or not), weighting, and the seed whose tuning set its rate
    "flow": Artifact(reads=("data", "autoencoder", "flow", "tuning")),
}

ALL = ("smoke", "default", "full")
TARGETS: dict[str, tuple[Target, ...]] = {
    # The exact density must integrate to one and be the sampler's (5 standard errors), and the
    # population must span NIHAO's ranges, at any size; the in-plane velocity spreads of dwarfs
    # and massive galaxies need the default profile's population to be measured.
    "51_galforge_galaxies": (
        *bounds(
            upper={
                "normalisation_max_dev_sigma": 5.0,
                "sampler_max_dev_sigma": 5.0,
                "xy_p95_max": 28.0,
                "feh_max": 1.0,
                "age_max": 13.8,
            },
            lower={"feh_min": -4.5, "age_min": 0.0},
            profiles=ALL,
            why="5 standard errors of an importance-sampling mean; NIHAO's ranges (|x|, |y| ≤ "
            "28 kpc, [Fe/H] ≈ −3 … +0.5, ages 0–13.8 Gyr)",
        ),
        *bounds(
            lower={"sigma_v_dwarf_median": 30.0, "sigma_v_massive_median": 150.0},
            upper={"sigma_v_dwarf_median": 60.0, "sigma_v_massive_median": 250.0},
            why="NIHAO's in-plane velocity spreads: ~40–50 km/s for dwarfs (log M* < 8.5), "
            "150–250 km/s for massive galaxies (> 10.5)",
        ),
        Target("n_stars_total", profiles=ALL, why="the population's size, reported"),
    ),
    # The autoencoder must generalise to held-out galaxies' images (no memorisation).
    "52_galforge_autoencoder": (
        *bounds(
            upper={"reconstruction_mse_test_over_train": 1.5},
            why="held-out images reconstruct within 1.5× the training MSE",
        ),
        *bounds(
            upper={"reconstruction_mse_test_over_train": 3.0},
            profiles=("smoke",),
            why="two epochs on 12 galaxies: sane numbers only",
        ),
        Target("probe_r2_latent_disk_scale", why="what the latent knows of the disk, reported"),
        Target("probe_r2_gain_gradient", why="what the latent adds about the gradient, reported"),
    ),
    "53_galforge_flows": tuple(
        Target(f"val_nll_{family}", profiles=ALL, why="validation galaxies, reported")
        for family in FAMILIES
    ),
    # Targets for the best family (chosen on validation galaxies) on held-out ones.
    "54_galforge_evaluation": (
        *bounds(
            upper={"c2st_auc_best": 0.60, "forward_kl_best": 0.5, "invalid_fraction_best": 1e-3},
            lower={"nll_gain_latent_min": 0.0},
            why="the best family samples held-out galaxies nearly indistinguishably from the truth",
        ),
        *bounds(
            upper={"invalid_fraction_best": 1e-3},
            profiles=("smoke",),
            why="the logit map makes Z ≤ 0 and ages outside 0–13.8 Gyr impossible",
        ),
        Target("nll_gain_latent_mean", why="the latent's worth, mean over replicates, reported"),
        *(
            Target(f"{key}_replicate_{stat}", why=f"{key} of the best family over the replicates")
            for key in ("c2st_auc", "forward_kl")
            for stat in ("mean", "max")
        ),
        *(
            Target(f"{key}_val_{mode}", why=f"validation galaxies, {mode.replace('_', ' ')}")
            for key in ("nll", "c2st_auc")
            for mode in ("mixture", "mean_latent")
        ),
        Target("kl_floor_gradient_spin_bulge", why="a blind model's KL floor, reported"),
    ),
    # A folder of real galaxies: no exact density and no known answer for the latent's worth;
    # only the autoencoder's generalisation and the samples' validity are asserted.
    "52_galforge_autoencoder_folder": (
        *bounds(
            upper={"reconstruction_mse_test_over_train": 1.5},
            why="held-out images reconstruct within 1.5× the training MSE",
        ),
        *bounds(
            upper={"reconstruction_mse_test_over_train": 3.0},
            profiles=("smoke",),
            why="two epochs on 12 galaxies: sane numbers only",
        ),
    ),
    "54_galforge_evaluation_folder": (
        *bounds(
            upper={"invalid_fraction_best": 1e-3},
            profiles=ALL,
            why="the logit map makes Z ≤ 0 and ages outside 0–13.8 Gyr impossible",
        ),
        Target("c2st_auc_best", profiles=ALL, why="reported"),
        Target("nll_best", profiles=ALL, why="reported"),
    ),
}
