"""Study 4 ratings: the two-sample test, one-class scores, their calibration and inputs."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from astrogen.diagnostics.two_sample import delong_interval, mann_whitney_p, rate_simulation
from astrogen.image_properties import COLUMNS, compressed_bits, measure_properties
from astrogen.models.one_class import (
    ContrastiveEncoder,
    EmbeddingScorer,
    augment,
    complexity_corrected,
    fisher_statistic,
    fit_complexity_correction,
    fit_feature_density,
    leave_one_out_p,
    nt_xent,
    upper_p,
)


def test_rating_p_value_is_uniform_under_the_null():
    p = []
    for i in range(60):
        rng = np.random.default_rng([i, 1])
        r = rate_simulation(rng.normal(size=(30, 3)), rng.normal(size=(40, 3)), epochs=3, seed=i)
        p.append(r.p_value)
        assert r.n_simulated == 30 and r.n_observed == 40
        assert r.n_test_simulated == 15 and r.n_test_observed == 20
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert np.mean(np.array(p) < 0.1) < 0.2  # no excess of small p-values


def test_rating_detects_a_shift_with_an_interval_around_the_auroc():
    rng = np.random.default_rng(2)
    r = rate_simulation(rng.normal(0.5, 1, (400, 4)), rng.normal(size=(400, 4)), seed=0)
    assert r.p_value < 1e-6
    assert r.auroc_lo < r.auroc < r.auroc_hi and r.auroc > 0.6
    with pytest.raises(ValueError, match="finite"):
        rate_simulation(np.full((10, 2), np.nan), rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match="alike"):
        rate_simulation(rng.normal(size=(10, 2)), rng.normal(size=(10, 3)))


def test_delong_interval_and_mann_whitney_on_known_distributions():
    rng = np.random.default_rng(3)
    neg, pos = rng.normal(size=3000), rng.normal(1.0, 1, 3000)
    auc, lo, hi = delong_interval(neg, pos)
    assert auc == pytest.approx(stats.norm.cdf(1 / np.sqrt(2)), abs=0.015)
    assert lo < auc < hi and hi - lo == pytest.approx(2 * 1.96 * 0.0064, rel=0.25)
    assert mann_whitney_p(neg, pos) < 1e-100
    assert mann_whitney_p(pos, neg) > 0.99


def test_complexity_grows_with_added_structure():
    rng = np.random.default_rng(4)
    yy, xx = np.indices((64, 64))
    bits = []
    for n_blobs in (0, 2, 8, 32):
        image = np.zeros((64, 64))
        for y, x in rng.uniform(8, 56, (n_blobs, 2)):
            image += 200 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 8)
        bits.append(
            compressed_bits(np.clip(image, 0, 255).astype(np.uint8)[None, None].repeat(3, 1))[0]
        )
    assert np.all(np.diff(bits) > 0), bits
    noisy = [compressed_bits(rng.normal(128, s, (1, 3, 64, 64)).clip(0, 255).astype(np.uint8))[0]
             for s in (0, 2, 8, 32)]  # fmt: skip
    assert np.all(np.diff(noisy) > 0), noisy


def test_complexity_correction_removes_the_linear_trend():
    rng = np.random.default_rng(5)
    L = rng.uniform(1, 3, 500)
    s = np.exp(0.5 + 1.5 * L + 0.1 * rng.normal(size=500))
    coef = fit_complexity_correction(s, L)
    assert coef["slope"] == pytest.approx(1.5, abs=0.05)
    corrected = complexity_corrected(s, L, coef)
    assert abs(np.corrcoef(corrected, L)[0, 1]) < 1e-6


def test_feature_flow_log_density_matches_a_known_gaussian():
    torch.manual_seed(0)
    rng = np.random.default_rng(6)
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    mean = np.array([1.0, -2.0])
    draw = lambda n: rng.multivariate_normal(mean, cov, n)  # noqa: E731
    table = pd.DataFrame(draw(6000), columns=["a", "b"])
    density, dropped = fit_feature_density(
        table, ["a", "b"], transforms=2, hidden=32, epochs=25, lr=3e-3
    )
    assert dropped == 0
    test = pd.DataFrame(draw(500), columns=["a", "b"])
    truth = stats.multivariate_normal(mean, cov).logpdf(test.to_numpy())
    got = density.log_density(test)
    assert np.mean(np.abs(got - truth)) < 0.05
    assert np.abs(got - truth).max() < 0.4
    # a NaN row scores +∞; a row's log-density is the same alone and in a batch
    nan_row = pd.DataFrame({"a": [np.nan], "b": [0.0]})
    assert density.score(nan_row)[0] == np.inf
    alone = np.array([density.log_density(test.iloc[[i]])[0] for i in range(20)])
    np.testing.assert_allclose(alone, got[:20], atol=1e-5)


def test_log_columns_enter_the_flow_as_log10():
    rng = np.random.default_rng(7)
    table = pd.DataFrame({"r": 10 ** rng.normal(0, 0.2, 3000), "c": rng.normal(size=3000)})
    density, _ = fit_feature_density(table, ["r", "c"], ["r"], transforms=1, hidden=16, epochs=5)
    np.testing.assert_allclose(density.transform(table)[:, 0], np.log10(table["r"]))
    assert density.score(pd.DataFrame({"r": [-1.0], "c": [0.0]}))[0] == np.inf


def test_calibrated_p_values_are_uniform_and_leave_one_out_is_exact():
    # an observed image not in the reference: P(p ≤ k/(n+1)) = k/(n+1), over fresh references
    rng = np.random.default_rng(8)
    p = np.array([upper_p(rng.normal(size=1), rng.normal(size=99))[0] for _ in range(4000)])
    assert p.min() >= 1 / 100 and p.max() <= 1
    for alpha in (0.01, 0.05, 0.2, 0.5):
        assert np.mean(p <= alpha) == pytest.approx(alpha, abs=4 * np.sqrt(alpha / 4000) + 1e-3)
    assert upper_p([np.inf], rng.normal(size=999))[0] == 1 / 1000
    ref = np.array([3.0, 1.0, 2.0, 2.0])
    np.testing.assert_allclose(leave_one_out_p(ref), [1 / 4, 4 / 4, 3 / 4, 3 / 4])
    assert fisher_statistic(np.array([[1.0, 1.0], [np.exp(-1), 1.0]])).tolist() == [0.0, 2.0]


def test_embedding_scores_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    encoder = ContrastiveEncoder({"width": 4, "dim": 8}).eval()
    x = torch.rand(12, 3, 64, 64) * 2 - 1
    batch = encoder.embed(x)
    alone = np.concatenate([encoder.embed(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(alone, batch, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1, atol=1e-6)
    scorer = EmbeddingScorer(batch[:8], k=3)
    s = scorer.score(batch)
    assert s[:8].min() == pytest.approx(0, abs=1e-5) or s[:8].min() >= 0  # own image in the bank
    np.testing.assert_allclose([scorer.score(alone[i : i + 1])[0] for i in range(12)], s, atol=1e-6)
    with pytest.raises(ValueError, match="neighbours"):
        EmbeddingScorer(batch[:2], k=3)


def test_augmentations_keep_the_pixels_and_the_contrastive_loss_rewards_pairs():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 64, 64) * 2 - 1
    views = augment(x, g, max_shift=2)
    assert views.shape == x.shape and views.min() >= -1 and views.max() <= 1
    # rotations, flips and cyclic shifts permute pixels: sorted values agree up to the dither
    np.testing.assert_allclose(views.flatten(1).sort(1).values, x.flatten(1).sort(1).values,
                               atol=1.01 / 255)  # fmt: skip
    z = torch.randn(32, 8)
    assert nt_xent(z, z + 0.01 * torch.randn(32, 8), 0.2) < nt_xent(z, torch.randn(32, 8), 0.2)


def test_measured_properties_of_known_profiles():
    yy, xx = np.indices((64, 64)) - 31.5

    def blob(sigma, q=1.0, amp=200):
        image = amp * np.exp(-(xx**2 + (yy / q) ** 2) / (2 * sigma**2))
        return np.clip(np.round(image), 0, 255).astype(np.uint8)[None].repeat(3, 0)

    pixels = np.stack([blob(3.0), blob(3.0, q=0.5), blob(1.5)])
    t = measure_properties(pixels, pixel_scale=1.0)
    assert list(t.columns) == list(COLUMNS)
    assert t.loc[0, "r50"] == pytest.approx(3.0 * np.sqrt(2 * np.log(2)), rel=0.05)
    assert abs(t.loc[0, "asymmetry"]) < 0.02 and t.loc[0, "ellipticity"] < 0.02
    assert t.loc[1, "ellipticity"] == pytest.approx(0.5, abs=0.05)
    assert t.loc[2, "r50"] < t.loc[0, "r50"]
    assert abs(t.loc[0, "colour_gr"]) < 1e-9 and abs(t.loc[0, "grad_ri"]) < 1e-9
    np.testing.assert_allclose(
        measure_properties(pixels[1:2], 1.0).to_numpy(), t.iloc[1:2].to_numpy(), atol=0
    )
    blank = measure_properties(np.zeros((1, 3, 64, 64), np.uint8))
    assert blank[["mag", "r50"]].isna().all(axis=None)
    with pytest.raises(ValueError, match="uint8"):
        measure_properties(np.zeros((1, 3, 64, 64)))


def test_spearman_is_exact_for_one_swap_and_zero_for_a_constant():
    from astrogen.studies.anomaly import spearman

    assert spearman([0, 0.25, 0.5, 0.75, 1], [1, 3, 2, 4, 5]) == 0.9
    assert spearman([0, 0.25, 0.5, 0.75, 1], [5, 4, 3, 2, 1]) == -1.0
    assert spearman([0, 1, 2], [3, 3, 3]) == 0.0


def test_the_stretch_inverts_to_the_bands_flux_and_flux_properties_see_the_light_itself():
    from astrogen.sims.anomaly import SKY_STRETCH, to_rgb
    from astrogen.stretch import LuptonStretch

    rng = np.random.default_rng(0)
    # near-grey pixels (balanced by the scales) from the sky's level to bright cores: no channel
    # saturates, so the inverse is exact
    level = rng.uniform(0.01, 5.0, (4, 1, 8, 8)) * rng.uniform(0.9, 1.1, (4, 3, 8, 8))
    bands = (level / np.array([1.8, 1.2, 1.0])[:, None, None]).astype(np.float32)  # g, r, i
    flux = SKY_STRETCH.to_flux(SKY_STRETCH.to_rgb(bands))  # R, G, B = i, r, g
    np.testing.assert_allclose(flux, bands[:, ::-1], rtol=1e-5)
    np.testing.assert_array_equal(to_rgb(bands), SKY_STRETCH.to_rgb(bands))
    # 8-bit: within the quantisation step; zero stays zero
    eight = np.round(SKY_STRETCH.to_rgb(bands) * 255).astype(np.uint8)
    np.testing.assert_allclose(SKY_STRETCH.to_flux(eight), bands[:, ::-1], rtol=0.03)
    assert (SKY_STRETCH.to_flux(np.zeros((1, 3, 2, 2), np.uint8)) == 0).all()

    # two Gaussian galaxies of the same total flux, one 2.5 × smaller: on linear flux their
    # magnitudes agree and the radius ratio is the true one; the stretch hides both
    yy, xx = np.indices((64, 64)) - 31.5
    stretch = LuptonStretch(q=8.0, soft=0.5, scales=(1.0, 1.0, 1.0))

    def galaxy(sigma, total=400.0):
        image = total * np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
        return image[None].repeat(3, 0)

    pixels = np.round(stretch.to_rgb(np.stack([galaxy(5.0), galaxy(2.0)])) * 255).astype(np.uint8)
    linear = measure_properties(pixels, 1.0, stretch=stretch)
    stretched = measure_properties(pixels, 1.0)
    assert abs(linear.loc[0, "mag"] - linear.loc[1, "mag"]) < 0.05
    assert linear.loc[0, "r50"] / linear.loc[1, "r50"] == pytest.approx(2.5, rel=0.05)
    assert linear.loc[0, "r50"] == pytest.approx(5.0 * np.sqrt(2 * np.log(2)), rel=0.05)
    assert stretched.loc[1, "mag"] - stretched.loc[0, "mag"] > 0.3  # the compact one "fainter"
