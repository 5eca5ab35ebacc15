"""Metrics on distributions with known answers."""

import numpy as np
import pytest

from astrogen.diagnostics.c2st import c2st
from astrogen.diagnostics.metrics import (
    kl_from_log_densities,
    sliced_wasserstein,
    wasserstein_1d,
)

rng = np.random.default_rng(0)


def test_w1_of_a_shift_is_the_shift():
    x = rng.normal(size=50_000)
    assert wasserstein_1d(x, x + 0.7) == pytest.approx(0.7, abs=1e-9)
    assert wasserstein_1d(x, rng.normal(size=50_000)) < 0.02


def test_sliced_w1_of_an_isotropic_shift():
    # For a shift δ, W1 along direction u is |u·δ|; E|u·δ| over the sphere in 2-D is 2|δ|/π.
    x = rng.normal(size=(20_000, 2))
    d = np.array([1.0, 0.0])
    assert sliced_wasserstein(x, x + d, n_projections=2000) == pytest.approx(2 / np.pi, rel=0.03)


def test_c2st_auc_is_half_for_identical_and_one_for_disjoint():
    x = rng.normal(size=(1000, 2))
    assert c2st(x, rng.normal(size=(1000, 2))).auc == pytest.approx(0.5, abs=0.06)
    assert c2st(x, x + 10).auc > 0.99


def test_kl_from_exact_log_densities_of_two_gaussians():
    # KL(N(0,1) || N(1, 2²)) = log 2 + (1 + 1)/(2·4) - 1/2
    x = rng.normal(size=200_000)
    log_p = -0.5 * x**2 - 0.5 * np.log(2 * np.pi)
    log_q = -0.5 * ((x - 1) / 2) ** 2 - np.log(2) - 0.5 * np.log(2 * np.pi)
    kl, se = kl_from_log_densities(log_p, log_q)
    assert kl == pytest.approx(np.log(2) + 2 / 8 - 0.5, abs=4 * se)
