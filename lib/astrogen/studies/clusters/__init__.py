"""Study 2 pipeline: simulated clusters → exact reference posteriors → cINN, MLP ensemble, maps.

Every step is cached in the store under a key built from the typed configuration
(:mod:`astrogen.studies.clusters.configuration`), so any notebook of the study can run first and
builds what it needs through the same calls.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from astrogen import paths, store
from astrogen.config import artifact_key
from astrogen.diagnostics.mcmc import (
    effective_sample_size,
    importance_resample,
    sample_ensemble,
    split_rhat,
)
from astrogen.io.clusters import load_cluster_tables, load_embeddings
from astrogen.models.autoencoder import Autoencoder, fit_autoencoder
from astrogen.models.inn import PosteriorEstimator, fit_posterior
from astrogen.models.regression import MLPEnsemble, fit_mlp_ensemble
from astrogen.sims.clusters import BOUNDS, OBSERVABLES, TARGETS, ClusterSimulator, render_maps
from astrogen.studies.clusters.configuration import ARTIFACTS, Config, DataConfig

STUDY = "clusters"
SIMULATOR = ClusterSimulator()
TARGET_BOUNDS = [BOUNDS[k] for k in TARGETS]
VARIANTS = ("scalars", "maps_scalars", "maps_embedding", "maps_joint")


def source_files(data: DataConfig) -> list[Path]:
    """The files of a real table (``data.source``) that its rows are read from."""
    directory = Path(data.source)
    files = [directory / "X.csv", directory / "Y.csv"]
    if (directory / "meta.csv").exists():
        files.append(directory / "meta.csv")
    files += [directory / f for f in (data.embeddings, data.embedding_names) if f]
    return files


def key(cfg: Config, name: str, seed: int, **extra) -> dict:
    """The cache key of artifact ``name`` (:data:`configuration.ARTIFACTS`) under ``cfg``, ``seed``;
    a real table adds its content fingerprint to what reads ``data``."""
    artifact = ARTIFACTS[name]
    if cfg.data.source is not None and "data" in artifact.reads:
        extra["source"] = {p.name: store.content_fingerprint(p) for p in source_files(cfg.data)}
    return artifact_key(cfg, name, artifact, seed=seed, **extra)


def target_names(cfg: Config) -> list[str]:
    """The target columns: the simulator's, or ``data.y_columns`` of a real table."""
    return list(TARGETS) if cfg.data.source is None else list(cfg.data.y_columns or TARGETS)


def simulate(n: int, seed: int, stream: int) -> dict[str, np.ndarray]:
    """``n`` prior draws ``theta`` (n, 6) and observables ``x`` (n, 7); ``stream`` separates sets."""
    rng = np.random.default_rng([seed, stream])
    theta = SIMULATOR.sample_prior(n, rng)
    return {"theta": theta, "x": SIMULATOR.simulate(theta, rng)}


def dataset(cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """Training set (``theta``, ``x``) and held-out calibration set (``test_theta``, ``test_x``).

    ``data.source`` ``None`` simulates ``data.n_train`` and ``data.n_test`` clusters; otherwise
    reads a real table (:func:`real_dataset`).
    """
    d = cfg.data
    if d.source is not None:
        return real_dataset(d, seed)

    def build() -> dict[str, np.ndarray]:
        train, test = simulate(d.n_train, seed, 0), simulate(d.n_test, seed, 1)
        return {**train, "test_theta": test["theta"], "test_x": test["x"]}

    return store.cached_arrays(
        paths.dataset_dir(STUDY), "clusters", key(cfg, "dataset", seed), build
    )


def real_dataset(data: DataConfig, seed: int) -> dict[str, np.ndarray]:
    """A real cluster table split into training and held-out rows (``data.n_test``, at most a
    fifth).

    ``data.source`` is a directory with ``X.csv``, ``Y.csv`` and optional ``meta.csv`` (see
    :func:`~astrogen.io.clusters.load_cluster_tables`); ``x_columns`` / ``y_columns`` default to
    the simulator's names; ``embeddings`` and ``embedding_names`` (``.npy`` files in that
    directory) append image embeddings to x, matched to rows by file name.
    """
    directory = Path(data.source)
    meta = directory / "meta.csv"
    table = load_cluster_tables(
        directory / "X.csv", directory / "Y.csv", list(data.x_columns or OBSERVABLES),
        list(data.y_columns or TARGETS), id_column=data.id_column,
        meta_csv=meta if meta.exists() else None,
    )  # fmt: skip
    x = table.x
    if data.embeddings:  # the seed's image embeddings, matched to rows by file name
        emb = load_embeddings(
            directory / data.embeddings, directory / data.embedding_names, table.ids
        )
        x = np.concatenate([x, emb], axis=1)
    perm = np.random.default_rng([seed, 6]).permutation(len(x))
    n_test = min(data.n_test, len(perm) // 5)
    test, train = perm[:n_test], perm[n_test:]
    return {
        "theta": table.theta[train], "x": x[train], "test_theta": table.theta[test],
        "test_x": x[test], "test_ids": table.ids[test],
    }  # fmt: skip


def reference_posteriors(cfg: Config, seed: int, progress: bool = True) -> dict[str, np.ndarray]:
    """Exact reference posteriors of ``reference.n_reference`` held-out clusters by ensemble MCMC.

    Returns ``theta`` (P, 6) truths, ``x`` (P, 7), ``samples`` (P, S, 6) thinned posterior draws
    in target units, ``rhat`` and ``ess`` (P, 6), ``acceptance`` (P,) and ``wall_s``.
    """
    r = cfg.reference

    def build() -> dict[str, np.ndarray]:
        start = time.perf_counter()
        held_out = simulate(r.n_reference, seed, 2)
        x = held_out["x"]
        rng = np.random.default_rng([seed, 3])
        out: dict[str, list] = {k: [] for k in ("samples", "rhat", "ess", "acceptance")}
        for i in range(0, len(x), r.chunk):
            xb = x[i : i + r.chunk, None, :]
            n = r.importance_draws
            prior = SIMULATOR.sample_latent(len(xb) * n, rng).reshape(len(xb), n, 6)
            init = importance_resample(
                lambda u, xb=xb: SIMULATOR.log_likelihood(xb, SIMULATOR.targets(u)), prior,
                r.walkers, rng,
            )  # fmt: skip
            chains = sample_ensemble(
                lambda u, xb=xb: SIMULATOR.log_posterior_latent(u, xb), init, r.steps, rng,
                burn=r.burn, thin=max(1, r.steps // r.thin_divisor), progress=progress,
            )  # fmt: skip
            out["samples"].append(SIMULATOR.targets(chains.flat()))
            out["rhat"].append(split_rhat(chains.samples))
            out["ess"].append(effective_sample_size(chains.samples))
            out["acceptance"].append(chains.acceptance)
        arrays = {k: np.concatenate(v) for k, v in out.items()}
        return {**held_out, **arrays, "wall_s": np.array(time.perf_counter() - start)}

    return store.cached_arrays(
        paths.dataset_dir(STUDY), "reference", key(cfg, "reference", seed), build
    )


def posterior_for(
    cfg: Config,
    seed: int,
    device: str = "cpu",
    *,
    variant: str = "scalars",
    progress: bool = True,
) -> tuple[PosteriorEstimator, dict]:
    """The cINN of ``variant``, cached; returns ``(estimator, sidecar record)``.

    ``scalars``: the 7 observables of the training set (:func:`dataset`), trained with
    ``training``. On the maps' training split, with ``map_training``: ``maps_scalars``,
    ``maps_embedding`` (+ the autoencoder latent), ``maps_joint`` (+ a conv summary of
    ``cinn.summary_dim`` features trained jointly).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {list(VARIANTS)}")
    name = f"cinn_{variant}"
    params = key(cfg, name, seed)
    c = cfg.cinn
    t = cfg.training if variant == "scalars" else cfg.map_training

    def train():
        theta, x, images = training_inputs(cfg, seed, variant, device)
        bounds = TARGET_BOUNDS if cfg.data.source is None or variant != "scalars" else None
        est = fit_posterior(
            theta, x, images=images, bounds=bounds, summary_dim=c.summary_dim,
            summary_width=c.summary_width, blocks=c.blocks, hidden=c.hidden, clamp=c.clamp,
            epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, val_fraction=t.val_fraction,
            patience=t.patience, seed=seed, device=device, progress=progress,
        )  # fmt: skip
        return est, est.config, {"history": est.history.to_dict()}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), name, params, ".pt")
    return store.cached_model(path, params, train, PosteriorEstimator)


def training_inputs(cfg: Config, seed: int, variant: str, device: str = "cpu"):
    """``(theta, x, images)`` a cINN variant trains on (images only for ``maps_joint``)."""
    if variant == "scalars":
        d = dataset(cfg, seed)
        return d["theta"], d["x"], None
    m = maps(cfg, seed)
    train = slice(0, m["n_train"].item())
    if variant == "maps_scalars":
        return m["theta"][train], m["x"][train], None
    if variant == "maps_embedding":
        return m["theta"][train], condition_with_embedding(cfg, seed, m, device)[train], None
    if variant == "maps_joint":
        return m["theta"][train], m["x"][train], m["maps"][train, None]
    raise ValueError(f"unknown variant {variant!r}; use one of {list(VARIANTS)}")


def mlp_for(
    cfg: Config,
    seed: int,
    device: str = "cpu",
    *,
    drop: int | None = None,
    progress: bool = True,
) -> tuple[MLPEnsemble, dict]:
    """MLP ensemble on the first ``mlp.n_train`` training clusters (:func:`dataset`), without
    observable column ``drop`` (an index)."""
    m = cfg.mlp
    params = key(cfg, "mlp", seed, drop=drop)

    def train():
        d = dataset(cfg, seed)
        keep = [j for j in range(d["x"].shape[1]) if j != drop]
        ens = fit_mlp_ensemble(
            d["x"][: m.n_train, keep], d["theta"][: m.n_train], members=m.members,
            hidden=m.hidden, layers=m.layers, epochs_mse=m.epochs_mse, epochs_mae=m.epochs_mae,
            batch_size=m.batch_size, lr=m.lr, val_fraction=m.val_fraction, seed=seed,
            device=device, progress=progress,
        )  # fmt: skip
        return ens, ens.config, {"kept_columns": keep}

    name = "mlp" if drop is None else f"mlp_drop{drop}"
    path = store.artifact_path(paths.checkpoint_dir(STUDY), name, params, ".pt")
    return store.cached_model(path, params, train, MLPEnsemble)


def maps(cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """X-ray maps of ``maps.n_maps`` fresh clusters: ``maps.train_fraction`` for training, the
    rest held out.

    Returns ``theta``, ``x``, ``maps`` (n, size, size) photon counts (float32) and ``n_train``.
    """
    p = cfg.maps

    def build() -> dict[str, np.ndarray]:
        d = simulate(p.n_maps, seed, 4)
        rng = np.random.default_rng([seed, 5])
        images = render_maps(d["theta"], d["x"], rng, size=p.size, exposure=p.exposure)
        return {**d, "maps": images, "n_train": np.array(int(p.train_fraction * p.n_maps))}

    return store.cached_arrays(paths.dataset_dir(STUDY), "maps", key(cfg, "maps", seed), build)


def autoencoder_for(
    cfg: Config, seed: int, device: str = "cpu", progress: bool = True
) -> tuple[Autoencoder, dict]:
    """Conv autoencoder on the training maps only (held-out maps are never seen)."""
    a = cfg.autoencoder
    params = key(cfg, "autoencoder", seed)

    def train():
        m = maps(cfg, seed)
        images = torch.as_tensor(m["maps"][: m["n_train"].item(), None])
        ae = fit_autoencoder(
            images, latent=a.latent, width=a.width, epochs=a.epochs, batch_size=a.batch_size,
            lr=a.lr, val_fraction=a.val_fraction, patience=a.patience, seed=seed, device=device,
            progress=progress,
        )  # fmt: skip
        return ae, ae.config, {"history": ae.history.to_dict()}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), "autoencoder", params, ".pt")
    return store.cached_model(path, params, train, Autoencoder)


def condition_with_embedding(
    cfg: Config, seed: int, m: dict | None = None, device: str = "cpu"
) -> np.ndarray:
    """The 7 observables with the autoencoder latent of each map appended, (n_maps, 7 + latent)."""
    m = m if m is not None else maps(cfg, seed)
    ae, _ = autoencoder_for(cfg, seed, device)
    latent = ae.embed(torch.as_tensor(m["maps"][:, None])).numpy()
    return np.concatenate([m["x"], latent], axis=1)


def artifact_keys(cfg: Config, seed: int) -> dict[str, dict]:
    """The cache key of every artifact the study's notebooks build under ``cfg`` (and ``seed``):
    the same key functions the builders call. Each key names its artifact (``key["artifact"]``)."""
    keys = {name: key(cfg, name, seed) for name in ("dataset", "reference", "maps", "autoencoder")}
    for variant in VARIANTS:
        keys[f"cinn_{variant}"] = key(cfg, f"cinn_{variant}", seed)
    keys["mlp"] = key(cfg, "mlp", seed, drop=None)
    for j in range(len(OBSERVABLES)):  # notebook 23's ablations
        keys[f"mlp_drop{j}"] = key(cfg, "mlp", seed, drop=j)
    return keys
