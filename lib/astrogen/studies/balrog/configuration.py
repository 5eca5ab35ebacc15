"""Study 3 configuration: injections, fixed-input repeats, emulators, detection model, targets.

Defaults are the ``default`` profile (6·10⁵ mini-Balrog injections and the seed's cWGAN-GP at
width 64, sized for a 2-core CPU); ``PROFILES`` holds the ``smoke`` and ``full`` overrides.
``data.source`` ``None`` is the simulator; a path reads a Balrog-style injection catalogue
instead, with ``data.columns`` the keyword arguments of
:func:`astrogen.io.balrog.load_balrog_catalogue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astrogen.config import Artifact, Target, bounds, setting
from astrogen.sims.balrog import BANDS, DEPTH_RANGES


@dataclass(frozen=True)
class DataConfig:
    """The injection catalogue: the mini-Balrog simulator's (``source`` None) or a file."""

    source: str | None = setting(
        None,
        doc="None: the simulated survey; else a Balrog-style catalogue (.csv, .parquet, .fits)",
    )
    columns: Any = setting(
        None, doc="a catalogue's column mapping: keyword arguments of load_balrog_catalogue"
    )
    n_injections: int = setting(600_000, minimum=100, doc="simulated injections")
    repeats: int = setting(4, minimum=1, doc="injections per deep galaxy, at random positions")
    batch_size: int = setting(
        256, minimum=1, doc="stamps rendered and measured together (sets the random stream)"
    )


@dataclass(frozen=True)
class FixedInputConfig:
    """Repeat injections of single test galaxies at single positions: p(Δμ | fixed input)."""

    n_galaxies: int = setting(24, minimum=1, doc="test galaxies, each at one of its positions")
    n_injections: int = setting(300, minimum=2, doc="injections per galaxy")
    mag_range: tuple[float, ...] = setting(
        (20.0, 23.5), doc="true i range the galaxies are drawn from (mostly detected)"
    )


@dataclass(frozen=True)
class GANConfig:
    """The seed's cWGAN-GP: noise 8, 5 critic steps, Adam 1e-4, betas (0.5, 0.999), GP 10."""

    noise_dim: int = setting(8, minimum=1)
    width: int = setting(64, minimum=2, doc="hidden units of generator and critic branches")
    trunk_layers: int = setting(2, minimum=1, doc="layers after the branches join")
    generator_steps: int = setting(12_000, minimum=1)
    critic_steps: int = setting(5, minimum=1, doc="critic updates per generator step")
    batch_size: int = setting(256, minimum=2)
    lr: float = setting(1e-4, minimum=0.0)
    betas: tuple[float, ...] = setting((0.5, 0.999), minimum=0.0, maximum=1.0, doc="Adam betas")
    gp_weight: float = setting(10.0, minimum=0.0, doc="gradient-penalty weight")
    ema: float = setting(
        0.999, minimum=0.0, maximum=1.0, doc="generator weights averaged with this decay"
    )
    eval_every: int = setting(500, minimum=1, doc="generator steps between validation W1 scores")


@dataclass(frozen=True)
class FlowConfig:
    """The conditional spline flow peer q(Δμ | conditions, true magnitudes)."""

    transforms: int = setting(5, minimum=1, doc="rational-quadratic spline transforms")
    hidden: int = setting(128, minimum=2, doc="hidden units per layer (two layers)")
    epochs: int = setting(30, minimum=1)
    batch_size: int = setting(1024, minimum=2)
    lr: float = setting(1e-3, minimum=0.0)
    patience: int = setting(10, minimum=1, doc="epochs without a validation gain before stopping")


@dataclass(frozen=True)
class DetectionConfig:
    """The detection classifier p(detected | conditions, true magnitudes), an MLP."""

    hidden: int = setting(128, minimum=2)
    layers: int = setting(3, minimum=1)
    epochs: int = setting(30, minimum=1)
    batch_size: int = setting(1024, minimum=2)
    lr: float = setting(1e-3, minimum=0.0)
    patience: int = setting(5, minimum=1)


@dataclass(frozen=True)
class EvaluationConfig:
    """Notebook 33's scoring."""

    min_bin_count: int = setting(
        100, minimum=1, doc='a condition bin is "populated" with this many detections per half'
    )


@dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    fixed: FixedInputConfig = FixedInputConfig()
    gan: GANConfig = GANConfig()
    flow: FlowConfig = FlowConfig()
    detection: DetectionConfig = DetectionConfig()
    evaluation: EvaluationConfig = EvaluationConfig()


# With data.source set, a catalogue has no simulator behind it: its runs record under <notebook>_catalogue, whose targets
# assert only what needs no ground truth (see TARGETS).
OWN_DATA_SUFFIX = "_catalogue"

PROFILES = {
    "smoke": {
        "data.n_injections": 8_000,
        "fixed.n_galaxies": 3,
        "fixed.n_injections": 40,
        "gan.width": 32,
        "gan.generator_steps": 40,
        "gan.ema": 0.9,
        "flow.transforms": 2,
        "flow.hidden": 32,
        "flow.epochs": 1,
        "detection.epochs": 1,
        "evaluation.min_bin_count": 10,
    },
    "full": {
        "data.n_injections": 1_800_000,
        "fixed.n_galaxies": 60,
        "fixed.n_injections": 1_000,
        "gan.width": 128,
        "gan.generator_steps": 100_000,
        "gan.batch_size": 512,
        "flow.transforms": 8,
        "flow.hidden": 256,
        "flow.epochs": 100,
        "detection.epochs": 60,
        "evaluation.min_bin_count": 200,
    },
}

_INJECTIONS = ("data.n_injections", "data.repeats", "data.batch_size")
# Cached artifacts and what they are built from; bump a version when its builder changes. A
# catalogue file (``data.source``) adds its content fingerprint (size and SHA-256) to the keys
# of the models trained on it; the simulator's artifacts are not built from a file.
ARTIFACTS = {
    "injections": Artifact(reads=_INJECTIONS),
    "fixed_input": Artifact(reads=(*_INJECTIONS, "fixed")),
    "cwgan_gp": Artifact(reads=("data", "gan")),
    "flow_nsf": Artifact(reads=("data", "flow")),
    "detection": Artifact(reads=("data", "detection")),
}
# Fields read only when scoring and plotting: they change no artifact.
EVALUATION_ONLY = ("evaluation.min_bin_count",)

ALL = ("smoke", "default", "full")
# The simulated survey must match its specification at any size: 10σ depths within 0.05 mag of
# the specified ranges.
_DEPTHS = bounds(
    lower={f"depth_min_{b}": lo - 0.05 for b, (lo, _) in DEPTH_RANGES.items()},
    upper={f"depth_max_{b}": hi + 0.05 for b, (_, hi) in DEPTH_RANGES.items()},
    profiles=ALL,
    why="the footprint spans the specified depths (DES-wide-like) within 0.05 mag",
)
# The seed's emulator (the cWGAN-GP) must match the injections; the flow peer is reported only.
_EMULATOR = (
    *bounds(
        upper={f"w1_ratio_gan_{b}": 3.0 for b in BANDS},
        why="per-band W1 within 3× the noise floor of two injection halves",
    ),
    *bounds(
        upper={f"w1_ratio_bin_max_gan_{b}": 5.0 for b in BANDS},
        why="W1 within 5× the floor in every populated condition bin",
    ),
    *bounds(
        upper={"c2st_auc_gan": 0.56},
        why="a classifier barely tells emulated from injected joint observables",
    ),
    *bounds(
        upper={"detection_ece": 0.02},
        why="detection probabilities calibrated to 2 %",
    ),
)
_FIXED_SPREAD = bounds(
    lower={f"fixed_spread_ratio_gan_{b}": 0.8 for b in BANDS},
    upper={f"fixed_spread_ratio_gan_{b}": 1.2 for b in BANDS},
    why="the spread at fixed input within 20 % of the repeat injections'",
)
_FLOW_PEER = (
    Target("c2st_auc_flow", why="the flow peer, reported"),
    *(Target(f"w1_ratio_flow_{b}", why="the flow peer, reported") for b in BANDS),
)

TARGETS: dict[str, tuple[Target, ...]] = {
    "31_balrog_injections": (
        *_DEPTHS,
        # With enough injections, faint-end errors must widen by ≥ 10 % from the best to the
        # worst observing conditions (8 000 smoke injections are too few to measure it).
        *bounds(
            lower={f"width_ratio_bad_over_good_{b}": 1.1 for b in BANDS},
            why="worse seeing and brighter sky widen the faint-end errors (the physics)",
        ),
        Target("detected_fraction", why="reported"),
        Target("m50_i", why="50 % completeness magnitude, reported"),
        Target("injections_per_second", why="speed of the injection pipeline, reported"),
    ),
    "32_balrog_training": (
        Target("gan_best_val_w1_sum", why="the kept checkpoint's validation score, reported"),
        Target("flow_best_val_nll", why="reported"),
        Target("speedup_gan_over_injection", why="emulated vs injected galaxies per second"),
    ),
    "33_balrog_evaluation": (
        *_EMULATOR,
        *_FIXED_SPREAD,
        *bounds(
            upper={"detection_ece": 0.5},
            profiles=("smoke",),
            why="one epoch on 8 000 injections: sane numbers only",
        ),
        *_FLOW_PEER,
    ),
    # A real catalogue has no simulator for repeat injections at fixed input (nor an injection
    # speed): its runs record under <notebook>_catalogue (OWN_DATA_SUFFIX) and assert the rest.
    "33_balrog_evaluation_catalogue": (
        *_EMULATOR,
        *bounds(upper={"detection_ece": 0.5}, profiles=("smoke",), why="sane numbers only"),
        *_FLOW_PEER,
    ),
}
