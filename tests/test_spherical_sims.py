"""The spherical simulators (Hernquist, Plummer) against analytic results."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from astrogen.constants import G
from astrogen.dynamics import (
    cbe_accelerations,
    fractional_error,
    random_rotations,
    rotated_cbe_accelerations,
)
from astrogen.sims.hernquist import HernquistSphere, add_multiplicative_noise
from astrogen.sims.plummer import PlummerSphere

SYSTEMS = {
    "hernquist_isotropic": lambda: HernquistSphere(anisotropy="isotropic"),
    "hernquist_beta_half": lambda: HernquistSphere(anisotropy="beta_half"),
    "plummer": lambda: PlummerSphere(),
}


@pytest.fixture(params=list(SYSTEMS))
def sphere(request):
    return SYSTEMS[request.param]()


def test_sigma_r2_solves_the_jeans_equation(sphere):
    # Anisotropic Jeans: d(ρσ_r²)/dr + 2βρσ_r²/r = -ρ GM(<r)/r²  ⇒
    # ρσ_r² r^{2β} = ∫_r^∞ ρ GM(<s)/s² s^{2β} ds. Work in units a = GM = 1.
    # The density and enclosed mass come from the model itself, so one test serves every system.
    a = sphere.scale_radius
    beta = float(sphere.beta(1.0))
    rho = lambda x: sphere.density(x * a) * a**3 / sphere.mass  # noqa: E731
    mass = lambda x: sphere.enclosed_mass(x * a) / sphere.mass  # noqa: E731
    for x in (0.05, 0.5, 2.0, 10.0):
        integral, _ = integrate.quad(lambda s: rho(s) * mass(s) / s**2 * s ** (2 * beta), x, np.inf)
        jeans = integral / (rho(x) * x ** (2 * beta))
        analytic = sphere.sigma_r2(x * a) / sphere.velocity_unit**2
        assert analytic == pytest.approx(jeans, rel=1e-6)


def test_df_integrates_to_the_density(sphere):
    # ∫ f d³v = ρ(r)/M, evaluated by quadrature over the velocity half-plane (v_r, v_t).
    a = sphere.scale_radius
    for x in (0.1, 1.0, 5.0):
        r = x * a
        v_esc = np.sqrt(-2 * sphere.potential(r))
        pos = torch.tensor([[r, 0.0, 0.0]], dtype=torch.float64)

        def f(vr, vt, pos=pos):
            vel = torch.tensor([[vr, vt, 0.0]], dtype=torch.float64)
            return float(torch.exp(sphere.log_df(pos, vel)))

        val, _ = integrate.dblquad(
            lambda vt, vr: 2 * np.pi * vt * f(vr, vt),
            -v_esc,
            v_esc,
            lambda vr: 0.0,
            lambda vr, v_esc=v_esc: np.sqrt(max(v_esc**2 - vr**2, 0.0)),
            epsabs=0,
            epsrel=1e-6,
        )
        expected = sphere.density(r) / sphere.mass / sphere.truncated_fraction
        assert val == pytest.approx(expected, rel=1e-4)


def test_samples_match_radial_cdf_and_dispersions(sphere):
    pos, vel = sphere.sample(200_000, np.random.default_rng(1))
    r = np.linalg.norm(pos, axis=1)
    assert r.max() <= sphere.r_max * sphere.scale_radius
    cdf = lambda x: sphere.enclosed_mass(x) / sphere.mass / sphere.truncated_fraction  # noqa: E731
    assert stats.kstest(r, cdf).pvalue > 1e-3
    a = sphere.scale_radius
    sel = (r > 0.9 * a) & (r < 1.1 * a)
    wide = (r > 0.5 * a) & (r < 2 * a)
    v_r = np.sum(vel[sel] * pos[sel], 1) / r[sel]
    sigma_r2 = sphere.sigma_r2(a)
    se = np.std(v_r**2) / np.sqrt(sel.sum())
    assert abs(np.mean(v_r**2) - sigma_r2) < 4 * se + 0.01 * sigma_r2
    # β = 1 - <v_t²>/(2<v_r²>) holds at every radius, so a wide shell gives a tight test.
    v_rw = np.sum(vel[wide] * pos[wide], 1) / r[wide]
    v_tw2 = np.sum(vel[wide] ** 2, 1) - v_rw**2
    beta_hat = 1 - np.mean(v_tw2) / (2 * np.mean(v_rw**2))
    tolerance = 4 * np.sqrt(3.0 / wide.sum())  # ≈ 4σ of a ratio of two means of squares
    assert beta_hat == pytest.approx(float(sphere.beta(a)), abs=tolerance)
    # every sampled star is bound, so its exact log-DF is finite
    assert torch.isfinite(sphere.log_df(torch.tensor(pos), torch.tensor(vel))).all()


def _exact_cbe_inputs(sphere, seed: int, n: int, direction: list[float]):
    """The exact ln f and ``n`` positions at 0.2–5 a along ``direction``, 64 velocities each."""
    rng = np.random.default_rng(seed)
    positions = sphere.scale_radius * rng.uniform(0.2, 5, (n, 1)) * np.array([direction])
    velocities = rng.normal(0, 0.3 * sphere.velocity_unit, (n, 64, 3))
    return (lambda w: sphere.log_df(w[:, :3], w[:, 3:])), positions, velocities


def test_exact_df_gives_exact_acceleration_through_cbe(sphere):
    log_df, positions, velocities = _exact_cbe_inputs(sphere, 2, 6, [0.6, 0.0, 0.8])
    acc = cbe_accelerations(log_df, positions, velocities).numpy()
    assert fractional_error(acc, sphere.acceleration(positions)).max() < 1e-8


def test_every_rotated_frame_of_the_exact_df_gives_the_exact_acceleration(sphere):
    log_df, positions, velocities = _exact_cbe_inputs(sphere, 4, 5, [0.0, 0.6, 0.8])
    frames = rotated_cbe_accelerations(
        log_df, positions, velocities, random_rotations(4, 1)
    ).numpy()
    assert frames.shape == (4, 5, 3)
    for acc in frames:
        assert fractional_error(acc, sphere.acceleration(positions)).max() < 1e-8


def test_random_rotations_are_proper_seeded_and_start_at_the_identity():
    rot = random_rotations(6, seed=3)
    assert rot.shape == (6, 3, 3)
    np.testing.assert_array_equal(rot[0], np.eye(3))
    np.testing.assert_allclose(
        rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(rot), 1.0)
    np.testing.assert_array_equal(rot, random_rotations(6, seed=3))
    assert not np.allclose(rot[1:], random_rotations(6, seed=4)[1:])
    assert random_rotations(1, seed=0).shape == (1, 3, 3)
    with pytest.raises(ValueError, match="at least one"):
        random_rotations(0, seed=0)


def test_spherical_average_reduces_an_asymmetric_error_of_ln_f():
    # ln f with a small error that breaks the symmetry (a wave along x): one frame inherits it,
    # the average over rotated frames sees it at different phases and cancels much of it.
    sphere = HernquistSphere()
    a = sphere.scale_radius
    rng = np.random.default_rng(5)
    positions = a * rng.uniform(0.3, 3, (40, 1)) * random_rotations(41, 9)[1:, :, 0]
    velocities = sphere.sample_velocities(positions, 256, rng)
    wrong = lambda w: sphere.log_df(w[:, :3], w[:, 3:]) + 0.05 * torch.sin(3 * w[:, 0] / a)  # noqa: E731
    frames = rotated_cbe_accelerations(wrong, positions, velocities, random_rotations(16, 2))
    truth = sphere.acceleration(positions)
    one_frame = np.median(fractional_error(frames[0].numpy(), truth))
    averaged = np.median(fractional_error(frames.mean(0).numpy(), truth))
    assert averaged < 0.5 * one_frame


def test_multiplicative_noise_has_the_requested_level():
    pos = np.ones((100_000, 3))
    noisy, _ = add_multiplicative_noise(pos, pos, 0.1, np.random.default_rng(3))
    assert np.std(noisy) == pytest.approx(0.1, rel=0.02)
    assert np.mean(noisy) == pytest.approx(1.0, abs=0.002)


@pytest.mark.bad_input
def test_bad_anisotropy_is_rejected():
    with pytest.raises(ValueError, match="anisotropy"):
        HernquistSphere(anisotropy="radial")


def test_same_seed_gives_identical_catalogues(sphere):
    first = sphere.sample(1000, np.random.default_rng(5))
    second = sphere.sample(1000, np.random.default_rng(5))
    assert all(np.array_equal(u, v) for u, v in zip(first, second, strict=True))


def test_inner_count_power_measures_the_central_cusp():
    from astrogen.models.bijectors import RadialLogCompression
    from astrogen.studies.hernquist import inner_count_power

    rng = np.random.default_rng(3)
    # Hernquist: N(<r) ∝ (r/(r+a))², so q → 2/3 at the centre. The estimator's expectation inside
    # r_c is 1/(3 E[ln(r_c/r)]) with E[ln(r_c/r)] = ∫₀^r_c N(<r)/N(<r_c) dr/r (by parts).
    sphere = HernquistSphere(anisotropy="isotropic")
    r_hq = np.linalg.norm(sphere.sample(1_000_000, rng)[0], axis=1) / sphere.scale_radius
    r_c = np.sort(r_hq)[10_000]
    mean_log, _ = integrate.quad(lambda r: (r / (1 + r)) ** 2 / (r_c / (1 + r_c)) ** 2 / r, 0, r_c)
    # 10⁴ inner stars: the estimate scatters by 1 %, i.e. 0.007.
    assert inner_count_power(r_hq) == pytest.approx(1 / (3 * mean_log), abs=0.03)
    u = rng.random(2_000_000)
    assert inner_count_power(u ** (1 / 3)) == pytest.approx(1.0, abs=0.03)  # uniform ball: q = 1
    # A ρ ∝ 1/r ball (N ∝ r², q = 2/3); the map with that power makes its centre uniform.
    ball = torch.from_numpy(rng.normal(size=(2_000_000, 3)))
    ball = ball / ball.norm(dim=1, keepdim=True) * torch.from_numpy(u ** (1 / 2))[:, None]
    assert inner_count_power(ball.norm(dim=1).numpy()) == pytest.approx(2 / 3, abs=0.03)
    mapped, _ = RadialLogCompression(3, scale=100.0, inner_power=2 / 3)(ball)  # pure power inside
    assert inner_count_power(mapped.norm(dim=1).numpy()) == pytest.approx(1.0, abs=0.03)
    with pytest.raises(ValueError, match="inner_power"):
        RadialLogCompression(3, scale=1.0, inner_power=1.5)


def test_plummer_profiles_agree_with_each_other():
    # Poisson: M(<r) = ∫ 4π s² ρ ds, and g(r) = -GM(<r)/r² = -dΦ/dr, checked by quadrature and
    # finite differences; the DF's closed form normalises to one over the untruncated sphere.
    sphere = PlummerSphere(r_max=1e6)
    b = sphere.scale_radius
    for x in (0.1, 1.0, 4.0):
        r = x * b
        m, _ = integrate.quad(lambda s: 4 * np.pi * s**2 * sphere.density(s), 0, r, epsrel=1e-10)
        assert m == pytest.approx(float(sphere.enclosed_mass(r)), rel=1e-8)
        g = sphere.acceleration(np.array([[r, 0.0, 0.0]]))[0, 0]
        assert g == pytest.approx(-G * float(sphere.enclosed_mass(r)) / r**2, rel=1e-12)
        h = 1e-5 * r
        dphi = (sphere.potential(r + h) - sphere.potential(r - h)) / (2 * h)
        assert g == pytest.approx(-dphi, rel=1e-6)
    assert sphere.truncated_fraction == pytest.approx(1.0, abs=1e-11)


def test_plummer_has_a_core_and_only_an_isotropic_df():
    from astrogen.studies.hernquist import inner_count_power

    sphere = PlummerSphere()
    x = np.linalg.norm(sphere.sample(1_000_000, np.random.default_rng(4))[0], axis=1)
    x /= sphere.scale_radius
    # A core: N(<r) ∝ r³ at the centre, so q → 1 (Hernquist's cusp gives 2/3). Over the inner 1 %
    # (r_c ≈ 0.22 b) the estimator expects 1/(3 E[ln(r_c/r)]), E as in the Hernquist test.
    count = lambda r: r**3 / (1 + r**2) ** 1.5  # noqa: E731
    r_c = np.sort(x)[10_000]
    mean_log, _ = integrate.quad(lambda r: count(r) / count(r_c) / r, 0, r_c)
    assert 1 / (3 * mean_log) > 0.95
    assert inner_count_power(x) == pytest.approx(1 / (3 * mean_log), abs=0.03)
    with pytest.raises(ValueError, match="only the 'isotropic' DF"):
        PlummerSphere(anisotropy="beta_half")
    with pytest.raises(ValueError, match="positive"):
        PlummerSphere(scale_radius=-1.0)


def test_velocities_at_a_position_follow_the_dispersion_and_anisotropy(sphere):
    a = sphere.scale_radius
    pos = np.array([[0.0, 0.7 * a, 0.0], [2.0 * a, 0.0, 0.0]])
    vel = sphere.sample_velocities(pos, 100_000, np.random.default_rng(8))
    assert vel.shape == (2, 100_000, 3)
    for x, v in zip(pos, vel, strict=True):
        r_hat = x / np.linalg.norm(x)
        v_r2 = (v @ r_hat) ** 2
        v_t2 = np.sum(v**2, 1) - v_r2
        sigma_r2 = float(sphere.sigma_r2(np.linalg.norm(x)))
        assert np.mean(v_r2) == pytest.approx(sigma_r2, rel=0.02)
        beta = 1 - np.mean(v_t2) / (2 * np.mean(v_r2))
        assert beta == pytest.approx(float(sphere.beta(a)), abs=0.03)
    assert torch.isfinite(sphere.log_df(torch.tensor(pos[:, None]), torch.tensor(vel))).all()
