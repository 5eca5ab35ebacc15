"""Cluster study: simulator vs likelihood, MCMC, cINN, scalers, loaders, calibration metrics."""

import json

import numpy as np
import pytest
import torch
from scipy import stats

from astrogen import store
from astrogen.diagnostics.c2st import c2st
from astrogen.diagnostics.calibration import central_coverage, ranks, tarp_coverage
from astrogen.diagnostics.mcmc import (
    effective_sample_size,
    importance_resample,
    sample_ensemble,
    split_rhat,
)
from astrogen.io.clusters import ClusterTableError, load_cluster_tables, load_embeddings
from astrogen.models.bijectors import BoundedLogit, Standardize
from astrogen.models.inn import ConditionalINN, PosteriorEstimator, fit_posterior
from astrogen.models.regression import fit_mlp_ensemble
from astrogen.sims.clusters import INFORMS, OBSERVABLES, TARGETS, ClusterSimulator, render_maps
from astrogen.studies import clusters as study
from astrogen.studies.clusters.configuration import DataConfig

SIM = ClusterSimulator()


def test_simulated_observables_follow_the_likelihood():
    rng = np.random.default_rng(0)
    theta = np.repeat(SIM.sample_prior(3, rng), 20_000, axis=0)
    x = SIM.simulate(theta, rng)
    z = (x - SIM.mean_observables(theta)) / SIM.scatter
    for j in range(len(OBSERVABLES)):
        assert stats.kstest(z[:, j], "norm").pvalue > 1e-3
    # independent scatter: the empirical correlation of residuals vanishes
    corr = np.corrcoef(z.T)
    assert np.abs(corr - np.eye(7)).max() < 0.03
    # the likelihood is the matching normalised diagonal Gaussian
    expected = stats.multivariate_normal(SIM.mean_observables(theta[0]), np.diag(SIM.scatter**2))
    np.testing.assert_allclose(SIM.log_likelihood(x[:50], theta[:50]), expected.logpdf(x[:50]))


def test_prior_maps_and_density():
    rng = np.random.default_rng(1)
    u = SIM.sample_latent(50_000, rng)
    theta = SIM.targets(u)
    np.testing.assert_allclose(SIM.latent(theta[:1000]), u[:1000], atol=1e-8)
    assert stats.kstest(theta[:, 5], "uniform").pvalue > 1e-3  # isotropic merger axes
    corr = SIM.prior_cholesky @ SIM.prior_cholesky.T
    assert np.abs(np.cov(u.T) - corr).max() < 0.03  # the sampler draws from N(0, C)
    expected = stats.multivariate_normal(np.zeros(6), corr)
    np.testing.assert_allclose(SIM.log_prior_latent(u[:100]), expected.logpdf(u[:100]))
    # blocks are independent, so the dependency structure is exact
    assert abs(np.corrcoef(u[:, 0], u[:, 3])[0, 1]) < 0.02
    assert set(INFORMS) == set(OBSERVABLES)
    assert all(set(v) <= set(TARGETS) for v in INFORMS.values())


def test_maps_carry_the_expected_counts():
    rng = np.random.default_rng(2)
    theta = SIM.sample_prior(200, rng)
    x = SIM.simulate(theta, rng)
    maps = render_maps(theta, x, rng, size=32)
    assert maps.shape == (200, 32, 32) and np.all(maps >= 0)
    expected = 4000 * 10 ** (x[:, 0] - 44.4) + 0.5 * 32 * 32
    ratio = maps.sum((1, 2)) / expected
    assert abs(np.median(ratio) - 1) < 0.05  # flux beyond the frame is lost, a few per cent


def test_mcmc_recovers_a_conjugate_gaussian_posterior():
    rng = np.random.default_rng(3)
    a = np.array([[1.0, 0.5], [-0.3, 2.0]])
    noise = 0.5
    u_true = rng.standard_normal((4, 2))
    x = u_true @ a.T + noise * rng.standard_normal((4, 2))
    precision = np.eye(2) + a.T @ a / noise**2
    cov = np.linalg.inv(precision)
    mean = (x @ a / noise**2) @ cov.T

    def log_lik(u):
        return -0.5 * np.sum((x[:, None] - u @ a.T) ** 2, -1) / noise**2

    def log_post(u):
        return log_lik(u) - 0.5 * np.sum(u**2, -1)

    init = importance_resample(log_lik, rng.standard_normal((4, 5000, 2)), 16, rng)
    chains = sample_ensemble(log_post, init, 2000, rng, burn=300, progress=False)
    flat = chains.flat()
    np.testing.assert_allclose(flat.mean(1), mean, atol=0.05)
    for p in range(4):
        np.testing.assert_allclose(np.cov(flat[p].T), cov, atol=0.03)
    assert split_rhat(chains.samples).max() < 1.05
    assert effective_sample_size(chains.samples).min() > 500


def test_mcmc_weights_separated_modes():
    rng = np.random.default_rng(4)
    centres, weights = np.array([-4.0, 4.0]), np.array([0.25, 0.75])

    def log_p(u):
        comps = -0.5 * ((u[..., 0, None] - centres) / 0.5) ** 2 + np.log(weights)
        return np.logaddexp(comps[..., 0], comps[..., 1])

    init = rng.uniform(-6, 6, (2, 24, 1))
    chains = sample_ensemble(log_p, init, 3000, rng, burn=500, progress=False)
    frac_right = (chains.flat()[..., 0] > 0).mean(1)
    np.testing.assert_allclose(frac_right, 0.75, atol=0.04)


def test_cinn_is_invertible_and_its_log_det_matches_autograd():
    torch.manual_seed(0)
    inn = ConditionalINN(4, 3, blocks=4, hidden=16)
    for p in inn.parameters():  # leave the identity start
        if p.requires_grad:
            p.data += 0.1 * torch.randn_like(p)
    y, c = torch.randn(8, 4), torch.randn(8, 3)
    z, log_det = inn(y, c)
    torch.testing.assert_close(inn.inverse(z, c), y, atol=1e-5, rtol=1e-5)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(
            lambda v, i=i: inn(v[None], c[i : i + 1])[0][0], y[i]
        )
        torch.testing.assert_close(log_det[i], torch.linalg.slogdet(jac)[1], atol=1e-4, rtol=1e-4)


def test_bounded_logit_inverse_and_log_det():
    bij = BoundedLogit([None, (0.0, 1.0), (2.0, 5.0)])
    x = torch.tensor([[0.3, 0.2, 4.0], [-1.0, 0.9, 2.5]], dtype=torch.float64)
    y, ladj = bij(x)
    torch.testing.assert_close(bij.inverse(y), x)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda v: bij(v[None])[0][0], x[i])
        torch.testing.assert_close(ladj[i], torch.linalg.slogdet(jac)[1])


def test_scaler_json_round_trip():
    s = Standardize(3, torch.randn(100, 3, dtype=torch.float64) * 4 + 2)
    back = Standardize.from_dict(json.loads(json.dumps(s.to_dict())))
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(back(x)[0], s(x)[0])
    with pytest.raises(ValueError, match="positive"):
        Standardize.from_dict({"mean": [0.0], "std": [0.0]})


def _linear_gaussian(n, rng):
    theta = rng.standard_normal((n, 2))
    x = theta @ np.array([[1.0, 0.6], [-0.4, 1.5]]).T + 0.5 * rng.standard_normal((n, 2))
    return theta, x


def test_fit_posterior_matches_an_analytic_posterior(tmp_path):
    rng = np.random.default_rng(5)
    theta, x = _linear_gaussian(30_000, rng)
    est = fit_posterior(theta, x, blocks=4, hidden=64, epochs=20, batch_size=256, lr=2e-3,
                        seed=0, progress=False)  # fmt: skip
    a = np.array([[1.0, 0.6], [-0.4, 1.5]])
    cov = np.linalg.inv(np.eye(2) + a.T @ a / 0.25)
    accs = []
    for x_obs in x[:3]:
        mean = cov @ a.T @ x_obs / 0.25
        exact = rng.multivariate_normal(mean, cov, 2000)
        torch.manual_seed(1)
        accs.append(
            c2st(est.sample(2000, x_obs).numpy(), exact, max_iter=100, balanced=True).accuracy
        )
    assert np.mean(accs) <= 0.55, accs
    # the estimator round-trips through the store: JSON config + weights_only state dict
    path = tmp_path / "post.pt"
    store.save_state(path, est, {"k": 1}, est.config)
    loaded, _ = store.load_state(path, PosteriorEstimator, {"k": 1})
    torch.testing.assert_close(loaded.log_prob(theta[:5], x[:5]), est.log_prob(theta[:5], x[:5]))
    assert est.map_estimate(x[:4]).shape == (4, 2)
    with pytest.raises(ValueError, match="without images"):
        est.condition(torch.as_tensor(x[:2]), torch.zeros(2, 1, 16, 16))


def test_fit_posterior_with_a_joint_image_summary():
    rng = np.random.default_rng(6)
    theta = rng.standard_normal((512, 2))
    images = np.abs(rng.standard_normal((512, 1, 16, 16))).astype(np.float32)
    est = fit_posterior(theta, theta[:, :1], images=images, blocks=2, hidden=16, epochs=1,
                        progress=False)  # fmt: skip
    s = est.sample(10, theta[:3, :1], torch.as_tensor(images[:3]))
    assert s.shape == (3, 10, 2) and torch.isfinite(s).all()


def test_calibration_metrics_on_exact_posteriors():
    rng = np.random.default_rng(7)
    n, s = 4000, 400
    mu = rng.standard_normal(n)
    truth = (mu + rng.standard_normal(n))[:, None]  # truth ~ N(mu, 1): the posterior is exact
    draws = (mu[:, None] + rng.standard_normal((n, s)))[..., None]
    levels = np.array([0.5, 0.9])
    np.testing.assert_allclose(central_coverage(draws, truth, levels)[:, 0], levels, atol=0.03)
    alpha, ecp = tarp_coverage(draws, truth, rng)
    assert np.abs(ecp - alpha).max() < 0.05
    assert stats.chisquare(np.histogram(ranks(draws, truth)[:, 0], 10)[0]).pvalue > 1e-3
    overconfident = (mu[:, None] + 0.5 * rng.standard_normal((n, s)))[..., None]
    assert central_coverage(overconfident, truth, levels)[0, 0] < 0.4
    same = c2st(
        rng.standard_normal((1000, 2)), rng.standard_normal((1000, 2)), max_iter=100, balanced=True
    ).accuracy
    shifted = c2st(
        rng.standard_normal((1000, 2)),
        rng.standard_normal((1000, 2)) + 1,
        max_iter=100,
        balanced=True,
    ).accuracy
    assert abs(same - 0.5) < 0.05 and shifted > 0.65


def test_mlp_ensemble_learns_a_regression():
    rng = np.random.default_rng(8)
    x = rng.uniform(-2, 2, (4000, 3))
    y = np.stack([np.sin(x[:, 0]) + x[:, 1], x[:, 2] ** 2], 1)
    ens = fit_mlp_ensemble(x, y, members=3, hidden=32, epochs_mse=30, epochs_mae=10, batch_size=64,
                           progress=False)  # fmt: skip
    assert ens.member_predictions(x[:10]).shape == (3, 10, 2)
    assert np.abs(ens.predict(x) - y).mean() < 0.15


def _write(path, text):
    path.write_text(text)
    return path


def test_cluster_table_loader_and_errors(tmp_path):
    xc = _write(tmp_path / "X.csv", "id,lx,tx\na,1.0,2.0\nb,1.5,2.5\nc,0.5,1.0\n")
    yc = _write(tmp_path / "Y.csv", "id,mass\nb,14.2\na,14.0\nc,13.9\n")
    table = load_cluster_tables(xc, yc, ["lx", "tx"], ["mass"], id_column="id")
    assert table.ids.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(table.theta[:, 0], [14.0, 14.2, 13.9])
    with pytest.raises(ClusterTableError, match=r"X.csv: missing column\(s\) \['kt'\]"):
        load_cluster_tables(xc, yc, ["lx", "kt"], ["mass"], id_column="id")
    short = _write(tmp_path / "Y2.csv", "mass\n14.0\n14.2\n")
    with pytest.raises(ClusterTableError, match=r"has 3 rows but .*Y2\.csv has 2"):
        load_cluster_tables(xc, short, ["lx"], ["mass"])
    nan = _write(tmp_path / "X3.csv", "lx,tx\n1.0,\n2.0,3.0\n")
    with pytest.raises(ClusterTableError, match=r"X3\.csv: column 'tx' has 1 NaN"):
        load_cluster_tables(nan, _write(tmp_path / "Y3.csv", "m\n1\n2\n"), ["lx", "tx"], ["m"])
    np.save(tmp_path / "emb.npy", np.arange(6.0).reshape(3, 2))
    np.save(tmp_path / "names.npy", np.array(["c.png", "a.png", "b.png"]))
    emb = load_embeddings(tmp_path / "emb.npy", tmp_path / "names.npy", table.ids)
    np.testing.assert_allclose(emb[:, 0], [2.0, 4.0, 0.0])
    with pytest.raises(ClusterTableError, match="no embedding for 1 cluster"):
        load_embeddings(tmp_path / "emb.npy", tmp_path / "names.npy", np.array(["a", "z"]))
    real = tmp_path / "real"
    real.mkdir()
    ids = [f"c{i}" for i in range(10)]
    _write(real / "X.csv", "id,lx\n" + "".join(f"{k},{i}\n" for i, k in enumerate(ids)))
    _write(real / "Y.csv", "id,mass\n" + "".join(f"{k},{14 + i / 10}\n" for i, k in enumerate(ids)))
    np.save(real / "emb.npy", np.arange(10.0)[::-1, None] * [1.0, 2.0])
    np.save(real / "names.npy", np.array([f"{k}.png" for k in ids[::-1]]))
    source = DataConfig(
        n_test=2, source=str(real), x_columns=("lx",), y_columns=("mass",), id_column="id",
        embeddings="emb.npy", embedding_names="names.npy",
    )  # fmt: skip
    d = study.real_dataset(source, seed=0)
    assert d["x"].shape == (8, 3) and d["test_x"].shape == (2, 3)
    for k, row in zip(
        d["test_ids"], d["test_x"], strict=True
    ):  # embedding rows follow the file names
        i = ids.index(k)
        np.testing.assert_allclose(row, [i, i, 2 * i])
