"""Morphology statistics against analytic Sérsic profiles and constructed images."""

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import gammainc, gammaincinv

from astrogen import morphology

SIZE = 64


def sersic_image(n: float, r_e: float, flux: float = 100.0, sub: int = 8) -> np.ndarray:
    """Circular Sérsic profile centred on the stamp, pixel-integrated by ``sub``² sampling."""
    b = gammaincinv(2 * n, 0.5)
    grid = (np.arange(SIZE * sub) + 0.5) / sub - SIZE / 2
    r = np.hypot(*np.meshgrid(grid, grid))
    image = np.exp(-b * (r / r_e) ** (1 / n)).reshape(SIZE, sub, SIZE, sub).mean((1, 3))
    return image * flux / image.sum()


def analytic_concentration(n: float, r_e: float) -> tuple[float, float]:
    """(r_p, C) for a Sérsic profile: η(r_p) = 0.2 (SDSS annulus 0.8–1.25 r), total within 1.5 r_p."""
    b = gammaincinv(2 * n, 0.5)
    enclosed = lambda r: gammainc(2 * n, b * (r / r_e) ** (1 / n))  # noqa: E731
    eta = lambda r: (enclosed(1.25 * r) - enclosed(0.8 * r)) / (1.25**2 - 0.8**2) / enclosed(r)  # noqa: E731
    r_p = brentq(lambda r: eta(r) - morphology.ETA, 0.5 * r_e, 20 * r_e)
    total = enclosed(1.5 * r_p)
    radius = lambda f: brentq(lambda r: enclosed(r) - f * total, 1e-3, 1.5 * r_p)  # noqa: E731
    return r_p, 5 * np.log10(radius(0.8) / radius(0.2))


# n = 4 at r_e ≥ 6 px: below that r20 < 1 px and pixelisation lowers C (0.3 at r_e = 4 px)
@pytest.mark.parametrize("n, r_e", [(1.0, 5.0), (1.0, 8.0), (4.0, 6.0)])
def test_petrosian_radius_and_concentration_match_sersic_integrals(n, r_e):
    got = morphology.measure(sersic_image(n, r_e), pixel_scale=1.0, zero_point=0.0, sigma=1e-6)
    r_p, c = analytic_concentration(n, r_e)
    assert got["r_petro"] == pytest.approx(r_p, rel=0.04)
    assert got["concentration"] == pytest.approx(c, abs=0.15)


def test_half_light_radius_of_exponential():
    got = morphology.measure(sersic_image(1.0, 6.0), pixel_scale=0.4, zero_point=22.5, sigma=1e-6)
    r_p, _ = analytic_concentration(1.0, 6.0)
    within = gammainc(2.0, gammaincinv(2.0, 0.5) * 1.5 * r_p / 6.0)  # Petrosian flux fraction
    assert got["r50"] == pytest.approx(0.4 * 6.0, rel=0.03)
    assert got["mag"] == pytest.approx(22.5 - 2.5 * np.log10(100.0 * within), abs=0.01)


def test_concentration_separates_disks_from_bulges():
    disk = morphology.measure(sersic_image(1.0, 6.0), 1.0, 0.0, sigma=1e-6)
    bulge = morphology.measure(sersic_image(4.0, 6.0), 1.0, 0.0, sigma=1e-6)
    assert 2.5 < disk["concentration"] < 3.0 < 4.0 < bulge["concentration"]
    assert bulge["gini"] > disk["gini"]
    assert bulge["m20"] < disk["m20"]


def test_gini_limits():
    assert morphology.gini(np.ones(100)) == pytest.approx(0.0, abs=1e-12)
    assert morphology.gini(np.r_[np.zeros(99), 1.0]) == pytest.approx(1.0)


def test_m20_rises_for_two_nuclei():
    single = sersic_image(1.0, 3.0)
    double = 0.5 * (np.roll(single, 8, axis=1) + np.roll(single, -8, axis=1))
    m_single = morphology.measure(single, 1.0, 0.0, sigma=1e-6)["m20"]
    m_double = morphology.measure(double, 1.0, 0.0, sigma=1e-6)["m20"]
    assert m_single < -1.5 and m_double > -1.2


def test_asymmetry_zero_for_symmetric_and_noise_corrected():
    image = sersic_image(1.0, 5.0, flux=200.0)
    assert abs(morphology.measure(image, 1.0, 0.0, sigma=1e-9)["asymmetry"]) < 1e-6
    rng = np.random.default_rng(0)
    noisy = [morphology.measure(image + rng.normal(0, 0.05, image.shape), 1.0, 0.0)["asymmetry"]
             for _ in range(20)]  # fmt: skip
    assert abs(np.mean(noisy)) < 0.02  # the white-noise term is removed in expectation
    lopsided = image + np.roll(sersic_image(1.0, 2.0, flux=40.0), 6, axis=1)
    assert morphology.measure(lopsided, 1.0, 0.0, sigma=1e-9)["asymmetry"] > 0.1


def test_border_sigma_recovers_white_noise():
    rng = np.random.default_rng(1)
    image = sersic_image(1.0, 4.0) + rng.normal(0, 0.03, (SIZE, SIZE))
    assert morphology.border_sigma(image) == pytest.approx(0.03, rel=0.08)
