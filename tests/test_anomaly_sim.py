"""Anomaly study: renderer accuracy, sky population, suites' defects, RGB conversion."""

import numpy as np
import pytest
from scipy.special import gammainc, gammaincinv
from scipy.stats import ks_2samp

from astrogen.sims.anomaly import (
    DEV_TOTAL,
    SUITES,
    mag_to_flux,
    render_noiseless,
    render_sky,
    render_suite,
    sample_population,
    to_rgb,
)


def _single(n_sersic: int, radius: float, fwhm: float, q: float = 1.0) -> dict[str, np.ndarray]:
    """One r = 16 galaxy that is a pure disk (n = 1) or a pure bulge (n = 4) in every band."""
    pop = sample_population(1, np.random.default_rng(0))
    pop.update(
        bulge_to_total=np.array([1.0 if n_sersic == 4 else 0.0]),
        disk_re=np.array([radius]),
        bulge_re=np.array([radius]),
        disk_q=np.array([q]),
        bulge_q=np.array([q]),
        arm_fraction=np.zeros(1),
        clump_fraction=np.zeros(1),
        n_arms=np.zeros(1, dtype=int),
        n_clumps=np.zeros(1, dtype=int),
        psf_fwhm=np.full((1, 3), fwhm),
        offset=np.array([[0.3, -0.2]]),
        mag_r=np.array([16.0]),
    )
    for key in ("bulge_g_r", "bulge_r_i", "disk_g_r", "disk_r_i"):
        pop[key] = np.zeros(1)
    return pop


@pytest.mark.parametrize("n_sersic", [1, 4])
def test_render_matches_analytic_sersic_enclosed_flux(n_sersic):
    size, scale, radius = 256, 0.1, 2.0  # r_e = 20 px, no PSF: the profile itself
    image = render_noiseless(
        _single(n_sersic, radius, 0.0), pixel_scale=scale, size=size, crop=None
    )[0, 1]
    flux = mag_to_flux(16.0)
    np.testing.assert_allclose(image.sum(), flux, rtol=1e-4)
    grid = np.arange(size) - (size / 2 + np.array([[0.3], [-0.2]]))
    r = np.hypot(grid[0][None, :], grid[1][:, None]) * scale / radius
    b = gammaincinv(2 * n_sersic, 0.5)
    total = DEV_TOTAL if n_sersic == 4 else 1.0
    for aperture in (0.5, 1.0, 2.0, 4.0):
        expected = flux * gammainc(2 * n_sersic, b * aperture ** (1 / n_sersic)) / total
        assert abs(image[r < aperture].sum() / expected - 1) < 0.01


def test_point_source_has_the_requested_moffat_fwhm():
    scale, fwhm = 0.05, 1.45  # fine pixels, so the half-maximum contour is well sampled
    image = render_noiseless(_single(1, 1e-4, fwhm), pixel_scale=scale, size=160, crop=None)[0, 1]
    # the area above half maximum of a round profile is π (FWHM/2)²
    measured = 2 * np.sqrt((image > image.max() / 2).sum() / np.pi) * scale
    assert abs(measured / fwhm - 1) < 0.03


def test_renders_are_reproducible_and_shaped():
    a, truth_a = render_sky(8, np.random.default_rng(3))
    b, truth_b = render_sky(8, np.random.default_rng(3))
    assert a.shape == (8, 3, 64, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert truth_a.equals(truth_b) and len(truth_a) == 8
    assert not np.array_equal(a, render_sky(8, np.random.default_rng(4))[0])


@pytest.mark.parametrize("name", sorted(SUITES))
def test_suites_at_zero_severity_are_the_sky(name):
    sky, truth = render_sky(6, np.random.default_rng(11))
    images, suite_truth = render_suite(name, 0.0, 6, np.random.default_rng(11))
    np.testing.assert_array_equal(images, sky)
    assert suite_truth.equals(truth)


def test_zero_severity_population_matches_the_sky_in_distribution():
    sky = sample_population(2000, np.random.default_rng(5))
    suite = sample_population(2000, np.random.default_rng(6), SUITES["compact"](0.0))
    for key in ("mag_r", "bulge_to_total", "disk_re", "disk_q", "disk_g_r", "arm_fraction"):
        assert ks_2samp(sky[key], suite[key]).pvalue > 1e-3, key


@pytest.mark.parametrize(
    ("name", "column", "sign"),
    [
        ("compact", "disk_re", -1),
        ("bulgy", "bulge_to_total", 1),
        ("colours", "bulge_g_r", -1),
        ("colours", "disk_g_r", 1),
        ("smooth", "arm_fraction", -1),
        ("psf", "psf_fwhm", 1),
        ("noise", "sky_sigma", 1),
    ],
)
def test_population_defects_grow_with_severity(name, column, sign):
    rng_seed = 2  # the same draws at every severity: only the defect changes
    means = [
        sample_population(500, np.random.default_rng(rng_seed), SUITES[name](s))[column].mean()
        for s in (0.0, 0.25, 0.5, 1.0)
    ]
    assert np.all(sign * np.diff(means) > 0), means


def test_particle_shot_noise_grows_with_severity():
    pop = sample_population(4, np.random.default_rng(8))
    smooth = render_noiseless(pop)
    residual = []
    for s in (0.25, 0.5, 1.0):
        particles = SUITES["particles"](s).particles
        image = render_noiseless(pop, particles=particles, rng=np.random.default_rng(9))
        # flux is conserved in expectation; the shot noise is what the defect adds
        np.testing.assert_allclose(image.sum((2, 3)), smooth.sum((2, 3)), rtol=0.2)
        residual.append(np.abs(image - smooth).sum() / smooth.sum())
    assert np.all(np.diff(residual) > 0), residual


def test_bulges_are_redder_than_disks_and_sizes_follow_luminosity():
    pop = sample_population(3000, np.random.default_rng(1))
    assert np.mean(pop["bulge_g_r"] > pop["disk_g_r"]) > 0.95
    assert np.corrcoef(pop["mag_r"], np.log(pop["disk_re"]))[0, 1] < -0.3
    assert np.all(pop["bulge_q"] >= pop["disk_q"])


def test_rgb_is_in_unit_range_and_maps_i_r_g_to_r_g_b():
    images, _ = render_sky(4, np.random.default_rng(0))
    rgb = to_rgb(images)
    assert rgb.shape == images.shape and rgb.dtype == np.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    red = np.zeros((1, 3, 2, 2), dtype=np.float32)
    red[:, 2] = 1.0  # i band only
    out = to_rgb(red)
    assert out[0, 0].min() > 0 and out[0, 1:].max() == 0
