"""Study 2 pipeline: simulated clusters → exact reference posteriors → cINN, MLP ensemble, maps.

Every step is cached in the store under a hash of its parameters, so any notebook of the study
can run first and builds what it needs through the same calls.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from astrogen import paths, store
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
from astrogen.sims.clusters import BOUNDS, TARGETS, ClusterSimulator, render_maps

STUDY = "clusters"
SIMULATOR = ClusterSimulator()
TARGET_BOUNDS = [BOUNDS[k] for k in TARGETS]

DATA_KEYS = ("n_train", "n_test")
REFERENCE_KEYS = ("n_reference", "walkers", "mcmc_steps", "mcmc_burn")
CINN_KEYS = ("blocks", "hidden", "clamp", "epochs", "batch_size", "lr")
MLP_KEYS = ("members", "mlp_hidden", "epochs_mse", "epochs_mae", "n_mlp_train")
MAP_KEYS = ("n_maps", "map_size", "exposure")
AE_KEYS = ("ae_latent", "ae_epochs")


def _pick(params: dict, keys: tuple[str, ...]) -> dict:
    return {k: params[k] for k in keys}


def simulate(n: int, seed: int, stream: int) -> dict[str, np.ndarray]:
    """``n`` prior draws ``theta`` (n, 6) and observables ``x`` (n, 7); ``stream`` separates sets."""
    rng = np.random.default_rng([seed, stream])
    theta = SIMULATOR.sample_prior(n, rng)
    return {"theta": theta, "x": SIMULATOR.simulate(theta, rng)}


def dataset(params: dict, seed: int, source: dict | None = None) -> dict[str, np.ndarray]:
    """Training set (``theta``, ``x``) and held-out calibration set (``test_theta``, ``test_x``).

    ``source`` ``None`` simulates; otherwise ``{"data_source": directory with X.csv, Y.csv
    (and optional meta.csv), "x_columns": [...], "y_columns": [...], "id_column": name or None}``
    reads a real table (see :func:`~astrogen.io.clusters.load_cluster_tables`) and holds out a
    random ``n_test`` rows (at most a fifth).
    """
    if source is not None:
        return real_dataset(source, params["n_test"], seed)
    key = {**_pick(params, DATA_KEYS), "seed": seed}

    def build() -> dict[str, np.ndarray]:
        train, test = simulate(params["n_train"], seed, 0), simulate(params["n_test"], seed, 1)
        return {**train, "test_theta": test["theta"], "test_x": test["x"]}

    return store.cached_arrays(paths.dataset_dir(STUDY), "clusters", key, build)


def real_dataset(source: dict, n_test: int, seed: int) -> dict[str, np.ndarray]:
    """A real cluster table split into training and held-out rows (see :func:`dataset`).

    ``source`` holds ``data_source`` (a directory with ``X.csv``, ``Y.csv``, optional
    ``meta.csv``), ``x_columns``, ``y_columns``, ``id_column`` and optionally ``embeddings`` and
    ``embedding_names`` (``.npy`` files in that directory), whose rows are appended to x.
    """
    directory = Path(source["data_source"])
    meta = directory / "meta.csv"
    table = load_cluster_tables(
        directory / "X.csv", directory / "Y.csv", source["x_columns"], source["y_columns"],
        id_column=source.get("id_column"), meta_csv=meta if meta.exists() else None,
    )  # fmt: skip
    x = table.x
    if source.get("embeddings"):  # the seed's image embeddings, matched to rows by file name
        emb = load_embeddings(
            directory / source["embeddings"], directory / source["embedding_names"], table.ids
        )
        x = np.concatenate([x, emb], axis=1)
    perm = np.random.default_rng([seed, 6]).permutation(len(x))
    n_test = min(n_test, len(perm) // 5)
    test, train = perm[:n_test], perm[n_test:]
    return {
        "theta": table.theta[train], "x": x[train], "test_theta": table.theta[test],
        "test_x": x[test], "test_ids": table.ids[test],
    }  # fmt: skip


def reference_posteriors(params: dict, seed: int, progress: bool = True) -> dict[str, np.ndarray]:
    """Exact reference posteriors of ``n_reference`` held-out clusters by ensemble MCMC.

    Returns ``theta`` (P, 6) truths, ``x`` (P, 7), ``samples`` (P, S, 6) thinned posterior draws
    in target units, ``rhat`` and ``ess`` (P, 6), ``acceptance`` (P,) and ``wall_s``.
    """
    key = {**_pick(params, REFERENCE_KEYS), "seed": seed}

    def build() -> dict[str, np.ndarray]:
        start = time.perf_counter()
        held_out = simulate(params["n_reference"], seed, 2)
        x = held_out["x"]
        rng = np.random.default_rng([seed, 3])
        walkers, chunk = params["walkers"], 250
        out: dict[str, list] = {k: [] for k in ("samples", "rhat", "ess", "acceptance")}
        for i in range(0, len(x), chunk):
            xb = x[i : i + chunk, None, :]
            prior = SIMULATOR.sample_latent(len(xb) * 20_000, rng).reshape(len(xb), 20_000, 6)
            init = importance_resample(
                lambda u, xb=xb: SIMULATOR.log_likelihood(xb, SIMULATOR.targets(u)), prior,
                walkers, rng,
            )  # fmt: skip
            steps = params["mcmc_steps"]
            chains = sample_ensemble(
                lambda u, xb=xb: SIMULATOR.log_posterior_latent(u, xb), init, steps, rng,
                burn=params["mcmc_burn"], thin=max(1, steps // 100), progress=progress,
            )  # fmt: skip
            out["samples"].append(SIMULATOR.targets(chains.flat()))
            out["rhat"].append(split_rhat(chains.samples))
            out["ess"].append(effective_sample_size(chains.samples))
            out["acceptance"].append(chains.acceptance)
        arrays = {k: np.concatenate(v) for k, v in out.items()}
        return {**held_out, **arrays, "wall_s": np.array(time.perf_counter() - start)}

    return store.cached_arrays(paths.dataset_dir(STUDY), "reference", key, build)


def posterior_for(
    params: dict,
    seed: int,
    device: str = "cpu",
    *,
    variant: str = "scalars",
    source: dict | None = None,
    progress: bool = True,
) -> tuple[PosteriorEstimator, dict]:
    """The cINN of ``variant`` — ``scalars`` (7 observables, full training set of ``source``,
    see :func:`dataset`), or on the maps subset: ``maps_scalars``, ``maps_embedding`` (+ the
    autoencoder latent), ``maps_joint`` (+ a conv summary trained jointly), these with
    ``map_epochs``, ``map_batch_size``, ``map_lr`` in place of ``epochs``, ``batch_size``, ``lr``. Cached; returns
    ``(estimator, sidecar record)``."""
    hp = _pick(params, CINN_KEYS)
    if variant != "scalars":
        hp.update(
            epochs=params["map_epochs"], batch_size=params["map_batch_size"], lr=params["map_lr"]
        )
    key = {**hp, "variant": variant, "seed": seed, "source": source}
    if variant == "scalars":
        key.update(_pick(params, DATA_KEYS))
    else:
        key.update(_pick(params, MAP_KEYS))
        if variant == "maps_embedding":
            key.update(_pick(params, AE_KEYS))

    def train():
        theta, x, images = training_inputs(params, seed, variant, source)
        bounds = TARGET_BOUNDS if source is None else None
        est = fit_posterior(
            theta, x, images=images, bounds=bounds, seed=seed, device=device,
            progress=progress, **hp,
        )  # fmt: skip
        return est, est.config, {"history": est.history.to_dict()}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), f"cinn_{variant}", key, ".pt")
    return store.cached_model(path, key, train, PosteriorEstimator)


def training_inputs(params: dict, seed: int, variant: str, source: dict | None = None):
    """``(theta, x, images)`` a cINN variant trains on (images only for ``maps_joint``)."""
    if variant == "scalars":
        d = dataset(params, seed, source)
        return d["theta"], d["x"], None
    m = maps(params, seed)
    train = slice(0, m["n_train"].item())
    if variant == "maps_scalars":
        return m["theta"][train], m["x"][train], None
    if variant == "maps_embedding":
        return m["theta"][train], condition_with_embedding(params, seed, m)[train], None
    if variant == "maps_joint":
        return m["theta"][train], m["x"][train], m["maps"][train, None]
    raise ValueError(
        f"unknown variant {variant!r}; use scalars, maps_scalars, maps_embedding, maps_joint"
    )


def mlp_for(
    params: dict,
    seed: int,
    drop: int | None = None,
    *,
    source: dict | None = None,
    progress: bool = True,
) -> tuple[MLPEnsemble, dict]:
    """MLP ensemble on the first ``n_mlp_train`` training clusters, without observable column
    ``drop`` (an index), on the data of ``source`` (see :func:`dataset`)."""
    key = {**_pick(params, MLP_KEYS), **_pick(params, DATA_KEYS), "drop": drop, "seed": seed,
           "source": source}  # fmt: skip

    def train():
        d = dataset(params, seed, source)
        keep = [j for j in range(d["x"].shape[1]) if j != drop]
        n = params["n_mlp_train"]
        ens = fit_mlp_ensemble(
            d["x"][:n, keep], d["theta"][:n], members=params["members"],
            hidden=params["mlp_hidden"], epochs_mse=params["epochs_mse"],
            epochs_mae=params["epochs_mae"], batch_size=512, seed=seed, progress=progress,
        )  # fmt: skip
        return ens, ens.config, {"kept_columns": keep}

    name = "mlp" if drop is None else f"mlp_drop{drop}"
    path = store.artifact_path(paths.checkpoint_dir(STUDY), name, key, ".pt")
    return store.cached_model(path, key, train, MLPEnsemble)


def maps(params: dict, seed: int) -> dict[str, np.ndarray]:
    """X-ray maps of ``n_maps`` fresh clusters: 80 % for training, 20 % held out.

    Returns ``theta``, ``x``, ``maps`` (n, size, size) photon counts (float32) and ``n_train``.
    """
    key = {**_pick(params, MAP_KEYS), "seed": seed}

    def build() -> dict[str, np.ndarray]:
        d = simulate(params["n_maps"], seed, 4)
        rng = np.random.default_rng([seed, 5])
        images = render_maps(
            d["theta"], d["x"], rng, size=params["map_size"], exposure=params["exposure"]
        )
        return {**d, "maps": images, "n_train": np.array(int(0.8 * params["n_maps"]))}

    return store.cached_arrays(paths.dataset_dir(STUDY), "maps", key, build)


def autoencoder_for(params: dict, seed: int, progress: bool = True) -> tuple[Autoencoder, dict]:
    """Conv autoencoder on the training maps only (held-out maps are never seen)."""
    key = {**_pick(params, MAP_KEYS), **_pick(params, AE_KEYS), "seed": seed}

    def train():
        m = maps(params, seed)
        images = torch.as_tensor(m["maps"][: m["n_train"].item(), None])
        ae = fit_autoencoder(
            images, latent=params["ae_latent"], width=8, epochs=params["ae_epochs"], seed=seed,
            progress=progress,
        )  # fmt: skip
        return ae, ae.config, {"history": ae.history.to_dict()}

    path = store.artifact_path(paths.checkpoint_dir(STUDY), "autoencoder", key, ".pt")
    return store.cached_model(path, key, train, Autoencoder)


def condition_with_embedding(params: dict, seed: int, m: dict | None = None) -> np.ndarray:
    """The 7 observables with the autoencoder latent of each map appended, (n_maps, 7 + latent)."""
    m = m if m is not None else maps(params, seed)
    ae, _ = autoencoder_for(params, seed)
    latent = ae.embed(torch.as_tensor(m["maps"][:, None])).numpy()
    return np.concatenate([m["x"], latent], axis=1)
