"""Study 1 pipeline: Hernquist mock catalogues → flow ensembles → CBE accelerations.

Every step is cached in the store under a key built from the typed configuration
(:mod:`astrogen.studies.hernquist.configuration`), so any notebook of the study can run first:
the accelerations notebook builds the ensembles it needs if they are missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from astrogen import paths, store
from astrogen.config import artifact_key
from astrogen.constants import KPC, M_SUN
from astrogen.dynamics import (
    cbe_accelerations,
    neighbour_velocities,
    random_rotations,
    rotated_cbe_accelerations,
)
from astrogen.io.hernquist import load_phase_space_npz
from astrogen.models.bijectors import Chain, RadialLogCompression, TangentialVelocityCore
from astrogen.models.flows import DensityEnsemble, DensityEstimator, fit_density
from astrogen.sims.hernquist import HernquistSphere, add_multiplicative_noise
from astrogen.sims.plummer import PlummerSphere
from astrogen.studies.hernquist.configuration import ARTIFACTS, Config
from astrogen.threads import torch_threads
from astrogen.workers import run_in_workers, worker_count

STUDY = "hernquist"


@dataclass(frozen=True)
class DatasetSpec:
    """One mock catalogue: which system and DF, and the fractional noise on every component."""

    anisotropy: str
    noise: float
    system: Literal["hernquist", "plummer"] = "hernquist"

    @property
    def label(self) -> str:
        if self.system == "plummer":
            return "cored (Plummer)"
        kind = "isotropic" if self.anisotropy == "isotropic" else "anisotropic (β = 1/2)"
        return kind + ("" if self.noise == 0 else f", {self.noise:.0%} noise")


DATASETS: dict[str, DatasetSpec] = {
    "isotropic": DatasetSpec("isotropic", 0.0),
    "beta_half": DatasetSpec("beta_half", 0.0),
    "isotropic_1pc": DatasetSpec("isotropic", 0.01),
    "isotropic_10pc": DatasetSpec("isotropic", 0.10),
    "cored": DatasetSpec("isotropic", 0.0, system="plummer"),
}


def sphere(name: str, r_max: float) -> HernquistSphere | PlummerSphere:
    """The true model behind data set ``name`` (M = 10¹⁰ M☉ and a scale radius of 5 kpc, as
    in the seed; a Plummer sphere for the cored set)."""
    spec = DATASETS[name]
    if spec.system == "plummer":
        return PlummerSphere(r_max=r_max)
    return HernquistSphere(anisotropy=spec.anisotropy, r_max=r_max)


def dataset(name: str, cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """Training catalogue and noiseless held-out test stars of data set ``name``, cached
    (:data:`CATALOGUE`: the user's catalogue, :func:`user_catalogue`).

    Noisy sets perturb the noiseless catalogue of the same DF and seed, as the seed study did.

    Returns:
        ``pos``, ``vel`` (n_stars, 3) and ``test_pos``, ``test_vel`` (n_test, 3), SI units.
    """
    if name == CATALOGUE:
        return user_catalogue(cfg, seed)
    spec = DATASETS[name]
    d = cfg.data
    key = dataset_key(name, cfg, seed)

    def build() -> dict[str, np.ndarray]:
        stream = {"hernquist": 0 if spec.anisotropy == "isotropic" else 1, "plummer": 3}
        rng = np.random.default_rng([seed, stream[spec.system]])
        model = sphere(name, d.r_max)
        pos, vel = model.sample(d.n_stars, rng)
        test_pos, test_vel = model.sample(d.n_test, rng)
        if spec.noise > 0:
            noise_rng = np.random.default_rng([seed, 2, round(spec.noise * 1e4)])
            pos, vel = add_multiplicative_noise(pos, vel, spec.noise, noise_rng)
        return {"pos": pos, "vel": vel, "test_pos": test_pos, "test_vel": test_vel}

    return store.cached_arrays(paths.dataset_dir(STUDY), name, key, build)


CATALOGUE = "catalogue"  # the name of the user's catalogue (``data.source``) in the notebooks


def dataset_names(cfg: Config) -> tuple[str, ...]:
    """The catalogues the notebooks run on: the simulated sets, or the user's one."""
    return (CATALOGUE,) if cfg.data.source is not None else tuple(DATASETS)


def label(name: str) -> str:
    """A catalogue's name in figures and tables."""
    return DATASETS[name].label if name in DATASETS else "your catalogue"


def truth_for(name: str, cfg: Config) -> HernquistSphere | PlummerSphere | None:
    """The exact model behind a catalogue: the simulated set's, ``data.truth``, or None."""
    if name == CATALOGUE:
        return truth_model(cfg.data.truth, cfg.data.r_max)
    return sphere(name, cfg.data.r_max)


def truth_model(spec: dict | None, r_max: float = 200.0) -> HernquistSphere | PlummerSphere | None:
    """The analytic model a ``data.truth`` mapping names, or None.

    ``spec``: ``{"model": "hernquist" | "plummer", "mass": M☉, "scale_radius": kpc}``, with
    optional ``"anisotropy"`` (Hernquist: ``"isotropic"`` or ``"beta_half"``) and ``"r_max"``
    (truncation, in scale radii; default the configuration's ``data.r_max``).
    """
    if spec is None:
        return None
    where = "data.truth"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected None or a mapping with 'model', got {spec!r}")
    models = {"hernquist": HernquistSphere, "plummer": PlummerSphere}
    allowed = {"model", "mass", "scale_radius", "anisotropy", "r_max"}
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected {sorted(allowed)}")
    if spec.get("model") not in models:
        raise ValueError(
            f"{where}.model: expected one of {sorted(models)}, got {spec.get('model')!r}"
        )
    kwargs = {"r_max": float(spec.get("r_max", r_max))}
    for key, unit in (("mass", M_SUN), ("scale_radius", KPC)):
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{where}.{key}: expected a positive number, got {value!r}")
        kwargs[key] = float(value) * unit
    if "anisotropy" in spec:
        kwargs["anisotropy"] = spec["anisotropy"]
    try:
        return models[spec["model"]](**kwargs)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def user_catalogue(cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """The user's catalogue (``data.source``), split into training and held-out stars.

    Returns the keys of :func:`dataset`: ``pos``, ``vel`` (training) and ``test_pos``,
    ``test_vel`` (a random ``data.test_fraction`` of the stars, seeded), SI units.
    """
    pos, vel = load_phase_space_npz(cfg.data.source)
    n_test = max(1, round(cfg.data.test_fraction * len(pos)))
    if len(pos) - n_test < 100:
        raise ValueError(
            f"{cfg.data.source}: {len(pos)} stars leave fewer than 100 to train on after "
            f"holding out {n_test}; a flow needs a catalogue of at least a few thousand"
        )
    order = np.random.default_rng([seed, 9]).permutation(len(pos))
    test, train = order[:n_test], order[n_test:]
    return {"pos": pos[train], "vel": vel[train], "test_pos": pos[test], "test_vel": vel[test]}


def anisotropy(pos: np.ndarray, vel: np.ndarray) -> float:
    """Catalogue-wide velocity anisotropy β̂ = 1 - Σ v_t² / (2 Σ v_r²)."""
    r_hat = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    v_r2 = np.sum(vel * r_hat, axis=1) ** 2
    v_t2 = np.sum(vel**2, axis=1) - v_r2
    return float(1 - v_t2.sum() / (2 * v_r2.sum()))


@dataclass(frozen=True)
class BetaProfile:
    """β(r) in equal-count radial bins: ``r`` the bins' median radii [m], ``beta`` and its
    standard error ``beta_err`` (≈ √(3/n) per bin of n stars, as for a ratio of mean squares)."""

    r: np.ndarray
    beta: np.ndarray
    beta_err: np.ndarray

    @property
    def anisotropic(self) -> bool:
        """Whether any bin's |β| exceeds 0.1 and four standard errors: an isotropic catalogue of
        10⁴ stars or more stays below both, a β = 1/2 one exceeds them everywhere."""
        return bool(np.any(np.abs(self.beta) > np.maximum(0.1, 4 * self.beta_err)))


def beta_profile(pos: np.ndarray, vel: np.ndarray, bins: int = 8) -> BetaProfile:
    """The measured anisotropy profile β(r) = 1 - <v_t²>/(2<v_r²>) of a catalogue."""
    r = np.linalg.norm(pos, axis=1)
    order = np.argsort(r)
    parts = np.array_split(order, bins)
    return BetaProfile(
        r=np.array([np.median(r[i]) for i in parts]),
        beta=np.array([anisotropy(pos[i], vel[i]) for i in parts]),
        beta_err=np.array([np.sqrt(3.0 / len(i)) for i in parts]),
    )


# An inner power this close to 1 (a density slope γ = 3(1 - q) < 0.15) is a core: the Hill
# estimate over the inner 1 % of a Plummer sphere expects 0.97 (the core is not yet pure r³
# there), and a map with q < 1 would carve a cusp into a flat density.
CORE_POWER = 0.95


def measured_inner_power(r: np.ndarray) -> float:
    """The cusp map's power q from the catalogue: :func:`inner_count_power`, clipped to
    [1/3, 1], and exactly 1 (no cusp map) when it indicates a core (q ≥ ``CORE_POWER``)."""
    q = inner_count_power(r)
    return 1.0 if q >= CORE_POWER else min(max(q, 1 / 3), 1.0)


def has_core(pos: np.ndarray) -> bool:
    """Whether the catalogue's centre is cored: :func:`measured_inner_power` is 1."""
    return measured_inner_power(np.linalg.norm(pos, axis=1)) == 1.0


def catalogue_flow_settings(
    cfg: Config, pos: np.ndarray, vel: np.ndarray, compare: bool = False
) -> FlowSettings:
    """:func:`flow_settings` for what the catalogue measures: its β profile and its centre."""
    return flow_settings(cfg, beta_profile(pos, vel).anisotropic, has_core(pos), compare)


def inner_count_power(r: np.ndarray, fraction: float = 0.01) -> float:
    """Power q of the enclosed count N(<r) ∝ r^(3q) over the innermost ``fraction`` of stars.

    Maximum-likelihood (Hill) estimate: inside r_c, radii of a power-law count have
    ln(r_c/r) exponentially distributed with mean 1/(3q). A density cusp ρ ∝ r^(-γ) gives
    q = 1 - γ/3; a cored density gives q = 1.
    """
    r = np.sort(np.asarray(r))
    n = max(int(fraction * len(r)), 10)
    if n >= len(r):
        raise ValueError(f"need more than {n} radii to measure the inner slope, got {len(r)}")
    r_c = r[n]
    return float(n / (3 * np.sum(np.log(r_c / r[:n]))))


MapSetting = float | Literal["auto"] | None


@dataclass(frozen=True)
class PhaseSpaceMaps:
    """The fixed maps' settings: ``inner_power`` q of the cusp map and the anisotropy β whose
    ``L^(-2β)`` velocity cusp the tangential map removes. Each is ``"auto"`` (measured on the
    catalogue), a number, or ``None`` (that map off: q = 1, β = 0)."""

    inner_power: MapSetting = "auto"
    anisotropy: MapSetting = "auto"

    def resolve(self, pos: np.ndarray, vel: np.ndarray) -> tuple[float, float]:
        """(q, β) for this catalogue."""
        r = np.linalg.norm(pos, axis=1)
        q = {"auto": None, None: 1.0}.get(self.inner_power, self.inner_power)
        q = measured_inner_power(r) if q is None else float(q)
        if not 0 < q <= 1:
            raise ValueError(f"inner_power must lie in (0, 1], got {q}")
        beta = {"auto": None, None: 0.0}.get(self.anisotropy, self.anisotropy)
        if beta is None:
            beta = float(np.median(beta_profile(pos, vel).beta))
        return q, min(max(float(beta), 0.0), 0.8)


def phase_space_bijector(
    pos: np.ndarray, vel: np.ndarray, maps: PhaseSpaceMaps = PhaseSpaceMaps()
) -> Chain:
    """Fixed phase-space maps in front of the flow, with scales measured on the catalogue.

    1. :class:`~astrogen.models.bijectors.TangentialVelocityCore` with p = 1 - β (β the median of
       the measured profile :func:`beta_profile`, clipped to [0, 0.8]) below the median
       tangential speed: a DF with f ∝ L^(-2β) has a cusp at zero tangential velocity that this
       map makes finite, while faster stars keep their velocities; for an isotropic catalogue
       p ≈ 1, nearly the identity.
    2. :class:`~astrogen.models.bijectors.RadialLogCompression` at the median radius, so the r⁻⁴
       tail of the density becomes a light one, with inner power q =
       :func:`measured_inner_power`, so a central density cusp becomes a finite density (the
       cusp's gradient, -γ/r, would otherwise dominate ∇ₓ ln f at small radii, where the CBE
       needs the much smaller gradients that carry the acceleration) and a core is left alone.
    """
    q, beta = maps.resolve(pos, vel)
    r = np.linalg.norm(pos, axis=1)
    v_t = np.linalg.norm(vel - np.sum(vel * pos, 1, keepdims=True) * pos / r[:, None] ** 2, axis=1)
    return Chain(
        TangentialVelocityCore(6, power=1 - beta, scale=float(np.median(v_t))),
        RadialLogCompression(6, float(np.median(r)), inner_power=q),
    )


def catalogue_fingerprint(pos: np.ndarray, vel: np.ndarray) -> dict:
    """A catalogue's content key: its shape and the SHA-256 of its float64 bytes."""
    digest = hashlib.sha256()
    for arr in (pos, vel):
        digest.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return {"stars": len(pos), "sha256": digest.hexdigest()}


def _fit_member(
    path: Path, params: dict, x: torch.Tensor, fit_kwargs: dict, progress: bool
) -> tuple[DensityEstimator, dict]:
    """Load one ensemble member from the store, or train it on one CPU thread and store it.

    One thread per member: small matrix products gain little from a second thread, so two
    members side by side train faster than one after another on two threads (1.35× in
    ``benchmarks/bench_hernquist.py``); it also makes a member's weights independent of how many
    run at once.
    """

    def train() -> tuple[DensityEstimator, dict, dict]:
        with torch_threads(1):
            est = fit_density(x, **fit_kwargs, progress=progress)
        return est, est.config, {"history": est.history.to_dict()}

    return store.cached_model(path, params, train, DensityEstimator.from_config)


_WORKER_DATA: dict[str, Any] = {}


def _init_worker(x: torch.Tensor, fit_kwargs: dict) -> None:
    """Keep the catalogue and the shared training settings for this worker's members."""
    _WORKER_DATA["x"] = x
    _WORKER_DATA["fit_kwargs"] = fit_kwargs


def _fit_member_in_worker(path: Path, params: dict, seed: int) -> None:
    fit_kwargs = {**_WORKER_DATA["fit_kwargs"], "seed": seed}
    _fit_member(path, params, _WORKER_DATA["x"], fit_kwargs, progress=False)


def fit_ensemble(
    pos: np.ndarray,
    vel: np.ndarray,
    settings: FlowSettings,
    *,
    seed: int,
    maps: PhaseSpaceMaps = PhaseSpaceMaps(),
    name: str = "catalogue",
    data_key: dict | None = None,
    device: str = "cpu",
    workers: int | None = None,
    progress: bool = True,
) -> tuple[DensityEnsemble, list[dict]]:
    """Train (or load) an ensemble of flows on a 6-D catalogue; members differ by seed only.

    Two fixed maps, set from the catalogue alone (no knowledge of the potential) unless ``maps``
    sets them, come first: :func:`phase_space_bijector`. Autoregressive
    orders alternate (positions first, then velocities first), which lets the first transform
    set the velocity scale from the position.

    On the CPU, members missing from the store train in ``workers`` processes at once (default:
    :func:`astrogen.workers.worker_count`, the job's declared threads), each on one thread; the result does not depend on ``workers``. The
    workers are spawned, so a script that calls this must guard its entry point with
    ``if __name__ == "__main__":`` (notebooks need nothing).

    Members are cached under ``data_key`` (default: :func:`catalogue_fingerprint`, the
    catalogue's content), the settings, the maps and the member's seed; ``name`` only names
    the files.

    Returns:
        The mixture of members and each member's sidecar record (params, history, wall time).
    """
    x = torch.from_numpy(np.hstack([pos, vel]))
    bijector = phase_space_bijector(pos, vel, maps)
    data_key = catalogue_fingerprint(pos, vel) if data_key is None else data_key
    fit_kwargs = {
        "family": settings.family,
        "bijector": bijector,
        "transforms": settings.transforms,
        "hidden": (settings.hidden, settings.hidden),
        "flow_kwargs": {"randperm": False},
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "lr": settings.lr,
        "patience": max(5, settings.epochs // 4),
        "device": device,
    }
    jobs = []
    for k in range(settings.members):
        params = member_key(data_key, settings, seed, k, maps)
        path = store.artifact_path(paths.checkpoint_dir(STUDY), f"{name}-flow{k}", params, ".pt")
        jobs.append((path, params, {**fit_kwargs, "seed": seed * 1000 + k}))

    missing = [job for job in jobs if not store.is_cached(job[0])]
    workers = min(worker_count() if workers is None else workers or 1, len(missing))
    if device == "cpu" and workers > 1:
        run_in_workers(
            _fit_member_in_worker, [(path, params, kw["seed"]) for path, params, kw in missing],
            workers, initializer=_init_worker, initargs=(x, fit_kwargs),
            desc=f"{name}: members", progress=progress,
        )  # fmt: skip
        with torch.random.fork_rng():  # rebuilding draws initial weights; keep the caller's RNG
            trained = [
                store.load_state(path, DensityEstimator.from_config, params)
                for path, params, _ in jobs
            ]
    else:
        trained = [_fit_member(path, params, x, kw, progress) for path, params, kw in jobs]
    estimators, records = zip(*trained, strict=True)
    return DensityEnsemble(list(estimators)), list(records)


@dataclass(frozen=True)
class FlowSettings:
    """What one ensemble is trained with: the :func:`fit_ensemble` keyword arguments."""

    family: str
    members: int
    epochs: int
    batch_size: int
    lr: float
    transforms: int
    hidden: int


def flow_settings(
    cfg: Config, anisotropic: bool, cored: bool = False, compare: bool = False
) -> FlowSettings:
    """The ensemble settings for a catalogue (``compare``: the second family's).

    Anisotropic catalogues (:attr:`BetaProfile.anisotropic` of the measured profile) train for
    ``flow.anisotropic_epochs``: fitted for as long as an isotropic set, a β = 1/2 member
    underestimates the acceleration by 4-7 % between 0.5 a and 2 a (a bias that more members do
    not average away); with twice the epochs a 4-member ensemble errs by 2.2 % instead of 3.0 %.

    Anisotropic and cored catalogues (:func:`has_core`) also train larger ensembles,
    ``flow.anisotropic_members`` and ``flow.cored_members``: at seed 0 with the spherical average
    of notebook 13, 4 members of the β = 1/2 set err by up to 3.1 % in a radial bin and 8 by at
    most 2.4 %; in a core the small central gradients scatter between members (single members
    by -13 % to +7 % at 0.2–0.5 b), and the inner bin's error falls from 3.5 % (4) to 2.7 % (8).
    """
    f = cfg.flow
    epochs = f.anisotropic_epochs if anisotropic else f.epochs
    members = max(
        f.members, f.anisotropic_members if anisotropic else 0, f.cored_members if cored else 0
    )
    settings = FlowSettings(f.family, members, epochs, f.batch_size, f.lr, f.transforms, f.hidden)
    if compare:
        c = cfg.compare
        settings = dataclasses.replace(
            settings, family=c.family, members=c.members, transforms=c.transforms
        )
    return settings


def member_key(
    data_key: dict,
    settings: FlowSettings,
    seed: int,
    k: int,
    maps: PhaseSpaceMaps = PhaseSpaceMaps(),
) -> dict:
    """Cache key of ensemble member ``k``: its data, training settings, maps and seed.

    Maps left at ``"auto"`` are measured on the data, so the data key determines them; the
    ensemble size is not part of it, so a larger ensemble reuses the members it has.
    """
    flow = {f: v for f, v in dataclasses.asdict(settings).items() if f != "members"}
    return {
        "artifact": "flow_member",
        "version": ARTIFACTS["flow_member"].version,
        "data": data_key,
        **flow,
        "maps": dataclasses.asdict(maps),
        "member_seed": seed * 1000 + k,
    }


def ensemble_for(
    name: str, cfg: Config, seed: int, device: str = "cpu", compare: bool = False
) -> tuple[DensityEnsemble, list[dict]]:
    """:func:`fit_ensemble` on data set ``name`` with :func:`flow_settings` for its measured
    anisotropy."""
    d = dataset(name, cfg, seed)
    settings = catalogue_flow_settings(cfg, d["pos"], d["vel"], compare)
    return fit_ensemble(
        d["pos"], d["vel"], settings, seed=seed, name=name, data_key=data_key(name, cfg, seed, d),
        device=device,
    )  # fmt: skip


def data_key(name: str, cfg: Config, seed: int, d: dict[str, np.ndarray]) -> dict:
    """What a catalogue's artifacts are keyed by: a simulated set's recipe, or the content of the
    user's training stars (:func:`catalogue_fingerprint`)."""
    if name == CATALOGUE:
        return catalogue_fingerprint(d["pos"], d["vel"])
    return dataset_key(name, cfg, seed)


def dataset_key(name: str, cfg: Config, seed: int) -> dict:
    """Cache key of a simulated catalogue: what it is drawn from, which determines its content."""
    return artifact_key(cfg, "dataset", ARTIFACTS["dataset"], name=name, seed=seed)


def accelerations_for(
    name: str,
    cfg: Config,
    seed: int,
    positions: np.ndarray,
    n_velocities: int,
    device: str = "cpu",
    compare: bool = False,
    rotations: int = 1,
) -> dict[str, np.ndarray]:
    """Cached :func:`ensemble_accelerations` of the ensemble :func:`ensemble_for` returns.

    Returns:
        ``ensemble`` (M, 3) (averaged over ``rotations`` frames), ``ensemble_one_frame`` (M, 3)
        and ``members`` (K, M, 3) accelerations [m/s²], and ``solves_per_s`` (CBE solves per
        second when they were computed).
    """
    d = dataset(name, cfg, seed)
    settings = catalogue_flow_settings(cfg, d["pos"], d["vel"], compare)
    key = acceleration_key(
        cfg, name, seed, positions, n_velocities, settings, data_key(name, cfg, seed, d), rotations
    )

    def solve() -> dict[str, np.ndarray]:
        ens, _ = ensemble_for(name, cfg, seed, device, compare)
        start = time.perf_counter()
        out = ensemble_accelerations(
            ens, positions, d["pos"], d["vel"], n_velocities, rotations=rotations, seed=seed
        )
        n_solves = len(positions) * (rotations + len(ens.members))
        out["solves_per_s"] = np.array(n_solves / (time.perf_counter() - start))
        return out

    return store.cached_arrays(paths.dataset_dir(STUDY), f"accelerations-{name}", key, solve)


def acceleration_key(
    cfg: Config,
    name: str,
    seed: int,
    positions: np.ndarray,
    n_velocities: int,
    settings: FlowSettings,
    data: dict,
    rotations: int = 1,
) -> dict:
    """Cache key of :func:`accelerations_for`: data, ensemble settings, positions, velocities
    and the number of frames of the spherical average."""
    return artifact_key(
        cfg,
        "accelerations",
        ARTIFACTS["accelerations"],
        name=name,
        data=data,
        flow=dataclasses.asdict(settings),
        seed=seed,
        positions=positions,
        n_velocities=n_velocities,
        rotations=rotations,
    )


def expected_flow_settings(name: str, cfg: Config, compare: bool = False) -> FlowSettings:
    """:func:`flow_settings` of a simulated set from its true anisotropy, for listing keys
    before any catalogue exists (a test checks that the measured profile agrees)."""
    spec = DATASETS[name]
    return flow_settings(cfg, spec.anisotropy != "isotropic", spec.system == "plummer", compare)


def map_positions(n_grid: int, a: float, extent: float = 5.0, r_min: float = 0.2) -> np.ndarray:
    """Positions of an ``n_grid``² map over |x|, |y| ≤ ``extent``·a in the z = 0 plane, without
    those inside ``r_min``·a (the centre, where the density cusp dominates)."""
    g = np.linspace(-extent, extent, n_grid)
    gx, gy = np.meshgrid(g, g)
    grid = a * np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], 1)
    return grid[np.linalg.norm(grid, axis=1) >= r_min * a]


def evaluation_positions(n: int, r_min: float, r_max: float, seed: int, a: float) -> np.ndarray:
    """``n`` positions with log-uniform radii in [r_min, r_max]·a and isotropic directions."""
    rng = np.random.default_rng([seed, 7])
    r = a * np.exp(rng.uniform(np.log(r_min), np.log(r_max), n))
    d = rng.normal(size=(n, 3))
    return r[:, None] * d / np.linalg.norm(d, axis=1, keepdims=True)


def ensemble_accelerations(
    ensemble: DensityEnsemble,
    positions: np.ndarray,
    pos: np.ndarray,
    vel: np.ndarray,
    n_velocities: int,
    progress: bool = True,
    rotations: int = 1,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """CBE accelerations of the ensemble mixture and of each member, at ``positions``.

    Velocities at each position are those of the ``n_velocities`` nearest catalogue stars. The
    mixture is solved in ``rotations`` frames (the identity and random rotations drawn from
    ``seed``) and averaged, :func:`~astrogen.dynamics.rotated_cbe_accelerations`: this assumes a
    spherical system; ``rotations=1`` is a single solve.

    Returns:
        ``ensemble`` (M, 3) (the average over the frames), ``ensemble_one_frame`` (M, 3) (the
        unrotated frame alone) and ``members`` (K, M, 3) (unrotated), m/s².
    """
    velocities = neighbour_velocities(pos, vel, positions, n_velocities)
    frames = rotated_cbe_accelerations(
        ensemble.log_prob, positions, velocities, random_rotations(rotations, seed),
        progress=progress,
    ).numpy()  # fmt: skip
    members = [
        cbe_accelerations(m.log_prob, positions, velocities, progress=progress).numpy()
        for m in ensemble.members
    ]
    return {
        "ensemble": frames.mean(0),
        "ensemble_one_frame": frames[0],
        "members": np.stack(members),
    }


def artifact_keys(cfg: Config, seed: int) -> dict[str, dict]:
    """The cache key of every artifact the study's notebooks build under ``cfg`` (and ``seed``).

    The same key functions the builders call; positions are those notebook 13 evaluates.
    """
    keys: dict[str, dict] = {}
    for name in DATASETS:
        keys[f"dataset-{name}"] = dataset_key(name, cfg, seed)
        variants = (False, True) if name == "isotropic" else (False,)
        for compare in variants:
            tag = f"{name}{'-compare' if compare else ''}"
            settings = expected_flow_settings(name, cfg, compare)
            keys[f"members-{tag}"] = {
                "data": keys[f"dataset-{name}"],
                "members": [
                    member_key(keys[f"dataset-{name}"], settings, seed, k)
                    for k in range(settings.members)
                ],
            }
            model = sphere(name, cfg.data.r_max)
            positions = evaluation_positions(
                cfg.accel.n_positions, 0.1, 10.0, seed, model.scale_radius
            )
            keys[f"accelerations-{tag}"] = acceleration_key(
                cfg, name, seed, positions, cfg.accel.n_velocities, settings,
                keys[f"dataset-{name}"], cfg.accel.rotations,
            )  # fmt: skip
    grid = map_positions(cfg.accel.map_grid, sphere("isotropic", cfg.data.r_max).scale_radius)
    keys["accelerations-map"] = acceleration_key(
        cfg, "isotropic", seed, grid, max(32, cfg.accel.n_velocities // 4),
        expected_flow_settings("isotropic", cfg), keys["dataset-isotropic"], cfg.accel.rotations,
    )  # fmt: skip
    return keys
