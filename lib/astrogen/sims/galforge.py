r"""Mock NIHAO-like galaxies whose star particles have an exact log-density.

A star is the 10-vector (x, y, z [kpc], v_x, v_y, v_z [km/s], Z, [Fe/H], [O/Fe] [dex], age [Gyr])
in the galaxy's frame (disk in the x–y plane, rotating towards +φ). A galaxy is a mixture of four
components c — thin disk, thick disk, bulge, stellar halo — with weights w_c, and

.. math:: p(s) = \sum_c w_c\, p_c(t)\, p_c(\mathbf x \mid t)\, p_c(\mathbf v \mid \mathbf x, t)\,
          p_c([{\rm Fe/H}] \mid t, R)\, p_c([{\rm O/Fe}] \mid [{\rm Fe/H}])\,
          p(Z \mid [{\rm Fe/H}], [{\rm O/Fe}]),

every factor a normalised closed-form density, so :func:`log_density` is exact:

* **ages** t — thin disk: exponential in t with scale τ on [0, 13.8] (recent star formation for
  low-mass galaxies, earlier for massive ones); thick disk, bulge and halo: truncated normals;
* **positions** — disks: surface density ∝ e^{−R/R_d(t)} (inside-out: R_d(t) = R_d (1.25 − 0.5
  t/13.8)) and vertical ∝ e^{−|z|/h(t)}, h growing with age and with the disk's dispersion
  (thicker at low spin), i.e. p(x) = e^{−R/R_d}/(2πR_d²) · e^{−|z|/h}/(2h); bulge and halo: Hernquist spheres, p(x) = a / (2π r (r + a)³);
* **velocities** — disks: Gaussians in (v_R, v_φ, v_z) (a rotation of (v_x, v_y), unit Jacobian)
  with dispersions falling as e^{−R/4R_d} and growing with age as ((t + 0.1)/10.1)^{1/3}, mean
  v_φ = f_rot v_c³/(v_c² + σ_R²) (asymmetric drift), rotation curve
  v_c(R) = v_max (1 − e^{−R/0.8R_d}); bulge and halo: isotropic Gaussians;
* **chemistry** — [Fe/H] Gaussian around an age–metallicity relation with a radial gradient
  −g min(R/R_d, 4) (disks); [O/Fe] Gaussian around a low-α (thin disk) or high-α (thick disk, bulge,
  halo) sequence in [Fe/H]; log10 Z Gaussian (σ 0.03 dex) around the Salaris et al. (1993) value
  log10(Z/0.0142) = [Fe/H] + log10(0.638·10^{[O/Fe]} + 0.362), so p(Z) carries 1/(Z ln 10).

**Galaxies** (:func:`sample_galaxies`): log10 M*/M☉ uniform on [7.5, 11]; v_max = 260 km/s ·
10^{0.2 (log M − 10.5)}; hidden properties that the global parameters do not fix — disk scale
length at fixed mass (0.12 dex scatter), bulge fraction, rotational support f_rot ("spin") and
gradient strength g — plus the mass–metallicity zero point. The global parameters the flows are
conditioned on (:func:`global_parameters`) are log M, the median and 10th-percentile age and the
mean Z, measured from the stars as on a real simulation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.special import expit, ndtr, ndtri

COLUMNS = ("x", "y", "z", "vx", "vy", "vz", "Z", "feh", "ofe", "age")
UNITS = ("kpc", "kpc", "kpc", "km/s", "km/s", "km/s", "", "dex", "dex", "Gyr")
COMPONENTS = ("thin", "thick", "bulge", "halo")
T_MAX = 13.8  # Gyr
Z_SUN = 0.0142
Z_SCATTER = 0.03  # dex
HALO_FRACTION = 0.03
LOG_MASS_RANGE = (7.5, 11.0)
HIDDEN = ("disk_scale", "bulge_fraction", "spin", "gradient")
CONDITIONS = ("log_mass", "age_median", "age_p10", "metallicity_mean")
# age distributions of the old components: (mean, σ) of normals truncated to [0, T_MAX]
OLD_AGES = {"thick": (10.0, 1.5), "bulge": (10.5, 2.0), "halo": (12.3, 0.8)}
GRADIENT_FLAT = 4.0  # disk scale lengths
FEH_SCATTER = {"thin": 0.12, "thick": 0.2, "bulge": 0.2, "halo": 0.45}
_LOG_2PI = np.log(2 * np.pi)


def sample_galaxies(
    n: int, rng: np.random.Generator, log_mass: float | None = None
) -> pd.DataFrame:
    """n galaxies' defining parameters, one row each (see the module docstring); all at stellar
    mass ``log_mass`` if given (the other properties then follow their prior at that mass)."""
    log_mass = rng.uniform(*LOG_MASS_RANGE, n) if log_mass is None else np.full(n, log_mass)
    eps = rng.standard_normal((5, n))
    dm = log_mass - 10.5
    return pd.DataFrame({
        "log_mass": log_mass,
        "v_max": 260.0 * 10 ** (0.2 * dm),
        "disk_scale": 2.5 * 10 ** (0.25 * dm + 0.12 * eps[0]),  # kpc
        "bulge_fraction": expit(-1.2 + 1.0 * dm + 0.8 * eps[1]),
        "spin": expit(1.0 + 1.0 * (log_mass - 9.0) + 0.6 * eps[2]),  # rotational support f_rot
        "gradient": 0.15 * 10 ** (0.15 * eps[3]),  # dex per disk scale length
        "feh_zero": 0.1 + 0.3 * dm + 0.1 * eps[4],
        "tau": 10 ** (1.3 - 0.2 * (log_mass - 9.0)),  # Gyr, thin-disk age scale
    })  # fmt: skip


def weights(galaxy: Mapping[str, float]) -> np.ndarray:
    """Component weights (thin, thick, bulge, halo), summing to 1."""
    bulge = galaxy["bulge_fraction"] * (1 - HALO_FRACTION)
    disk = 1 - HALO_FRACTION - bulge
    return np.array([0.8 * disk, 0.2 * disk, bulge, HALO_FRACTION])


# ---- ages -----------------------------------------------------------------------------------


def _thin_age_logpdf(t: np.ndarray, tau: float) -> np.ndarray:
    """p(t) ∝ exp(t / τ) on [0, T_MAX]: τ > 0 favours old stars, τ < 0 young ones."""
    lam = 1.0 / tau
    log_norm = np.log(np.abs(np.expm1(lam * T_MAX) / lam))
    return np.where((t >= 0) & (t <= T_MAX), lam * t - log_norm, -np.inf)


def _thin_age_sample(n: int, tau: float, rng: np.random.Generator) -> np.ndarray:
    lam = 1.0 / tau
    return np.log1p(rng.uniform(size=n) * np.expm1(lam * T_MAX)) / lam


def _truncnorm_logpdf(t: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    a, b = (0 - mean) / sigma, (T_MAX - mean) / sigma
    log_mass = np.log(ndtr(b) - ndtr(a))
    u = (t - mean) / sigma
    inside = (t >= 0) & (t <= T_MAX)
    return np.where(inside, -0.5 * u**2 - 0.5 * _LOG_2PI - np.log(sigma) - log_mass, -np.inf)


def _truncnorm_sample(n: int, mean: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    lo, hi = ndtr((0 - mean) / sigma), ndtr((T_MAX - mean) / sigma)
    return mean + sigma * ndtri(lo + rng.uniform(size=n) * (hi - lo))


def _thin_tau(galaxy: Mapping[str, float]) -> float:
    # massive galaxies formed their disks early (τ > 0: older stars more likely); dwarfs late
    return float(np.where(galaxy["log_mass"] > 9.0, galaxy["tau"], -galaxy["tau"]))


# ---- structure and kinematics ---------------------------------------------------------------


def _disk_scale(galaxy: Mapping[str, float], t: np.ndarray, thick: bool) -> np.ndarray:
    r_d = galaxy["disk_scale"] * (1.25 - 0.5 * t / T_MAX)
    return r_d * (1.3 if thick else 1.0)


def _heating(galaxy: Mapping[str, float]) -> float:
    # velocity dispersion relative to v_max: a disk with less rotational support is hotter
    return 0.35 + 0.65 * (1 - galaxy["spin"])


def _scale_height(galaxy: Mapping[str, float], t: np.ndarray, thick: bool) -> np.ndarray:
    # h grows with the disk's dispersion, so a hot (low-spin) disk is visibly thicker edge-on
    heat = _heating(galaxy) / 0.6
    return galaxy["disk_scale"] * (0.08 + 0.02 * t) * (3.0 if thick else 1.0) * heat


def _hernquist_scale(galaxy: Mapping[str, float], component: str) -> float:
    return galaxy["disk_scale"] * (0.25 if component == "bulge" else 3.0)


def _disk_kinematics(
    galaxy: Mapping[str, float], radius: np.ndarray, t: np.ndarray, thick: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean v_φ, σ_R, σ_φ, σ_z) at cylindrical radius R and age t."""
    v_max, r_d = galaxy["v_max"], galaxy["disk_scale"]
    v_c = v_max * (1 - np.exp(-radius / (0.8 * r_d)))
    sigma0 = v_max * _heating(galaxy) * (1.4 if thick else 1.0)
    sigma_r = sigma0 * np.exp(-radius / (4 * r_d)) * ((t + 0.1) / 10.1) ** (1 / 3) + 3.0
    # asymmetric drift: lag ≈ σ_R²/v_c where σ_R ≪ v_c, mean → 0 where the disk is hot
    mean_phi = galaxy["spin"] * v_c**3 / (v_c**2 + sigma_r**2)
    return mean_phi, sigma_r, 0.8 * sigma_r, 0.6 * sigma_r


def _spheroid_sigma(galaxy: Mapping[str, float], component: str) -> float:
    return galaxy["v_max"] * (0.55 if component == "bulge" else 0.45)


# ---- chemistry -----------------------------------------------------------------------------


def _feh_mean(
    galaxy: Mapping[str, float], component: str, t: np.ndarray, radius: np.ndarray
) -> np.ndarray:
    g, feh0 = galaxy["gradient"], galaxy["feh_zero"]
    # gradients flatten beyond 4 scale lengths, as observed in outer disks
    x = np.minimum(radius / galaxy["disk_scale"], GRADIENT_FLAT)
    if component == "thin":
        return feh0 + 0.25 - 0.03 * t - g * x
    if component == "thick":
        return feh0 - 0.4 - 0.03 * t - 0.5 * g * x
    if component == "bulge":
        return feh0 + 0.1 - 0.02 * t + 0 * radius
    return feh0 - 1.4 + 0 * t


def _ofe_mean(component: str, feh: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean [O/Fe] given [Fe/H] on the low-α (thin) or high-α sequence, and its scatter."""
    if component == "thin":
        return 0.03 - 0.12 * np.clip(feh, -1.5, 0.5), 0.04
    return 0.32 - 0.2 * np.clip(feh + 0.6, 0.0, 1.0), 0.05


def salaris_log_z(feh: np.ndarray, ofe: np.ndarray) -> np.ndarray:
    """log10 Z from [Fe/H] and α enhancement (Salaris, Chieffi & Straniero 1993)."""
    return np.log10(Z_SUN) + feh + np.log10(0.638 * 10**ofe + 0.362)


def _normal_logpdf(x: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / sigma) ** 2 - np.log(sigma) - 0.5 * _LOG_2PI


# ---- the galaxy's star density ----------------------------------------------------------------


def sample_stars(galaxy: Mapping[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    """n stars (n, 10) in :data:`COLUMNS` order, drawn from the galaxy's mixture."""
    comp = rng.choice(len(COMPONENTS), size=n, p=weights(galaxy))
    out = np.empty((n, len(COLUMNS)))
    for k, name in enumerate(COMPONENTS):
        sel = comp == k
        m = int(sel.sum())
        if m == 0:
            continue
        if name == "thin":
            t = _thin_age_sample(m, _thin_tau(galaxy), rng)
        else:
            t = _truncnorm_sample(m, *OLD_AGES[name], rng)
        if name in ("thin", "thick"):
            thick = name == "thick"
            radius = rng.gamma(2.0, _disk_scale(galaxy, t, thick))
            phi = rng.uniform(0, 2 * np.pi, m)
            z = rng.laplace(0.0, _scale_height(galaxy, t, thick))
            mean_phi, s_r, s_phi, s_z = _disk_kinematics(galaxy, radius, t, thick)
            v_r = rng.normal(0.0, s_r)
            v_phi = rng.normal(mean_phi, s_phi)
            vz = rng.normal(0.0, s_z)
            cos, sin = np.cos(phi), np.sin(phi)
            pos = np.stack([radius * cos, radius * sin, z], 1)
            vel = np.stack([v_r * cos - v_phi * sin, v_r * sin + v_phi * cos, vz], 1)
        else:
            a = _hernquist_scale(galaxy, name)
            sq = np.sqrt(rng.uniform(size=m))
            r = a * sq / (1 - sq)
            direction = rng.standard_normal((m, 3))
            pos = r[:, None] * direction / np.linalg.norm(direction, axis=1, keepdims=True)
            vel = rng.normal(0.0, _spheroid_sigma(galaxy, name), (m, 3))
            radius = np.hypot(pos[:, 0], pos[:, 1])
        feh = rng.normal(_feh_mean(galaxy, name, t, radius), FEH_SCATTER[name])
        ofe_mean, ofe_sigma = _ofe_mean(name, feh)
        ofe = rng.normal(ofe_mean, ofe_sigma)
        log_z = rng.normal(salaris_log_z(feh, ofe), Z_SCATTER)
        out[sel] = np.column_stack([pos, vel, 10**log_z, feh, ofe, t])
    return out


def component_log_densities(stars: np.ndarray, galaxy: Mapping[str, float]) -> np.ndarray:
    """log w_c + log p_c(s) per star and component, (n, 4)."""
    x, y, z, vx, vy, vz, metal, feh, ofe, t = np.asarray(stars, float).T
    radius = np.hypot(x, y)
    phi = np.arctan2(y, x)
    v_r = vx * np.cos(phi) + vy * np.sin(phi)
    v_phi = -vx * np.sin(phi) + vy * np.cos(phi)
    r = np.sqrt(radius**2 + z**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_z_density = _normal_logpdf(
            np.log10(metal), salaris_log_z(feh, ofe), Z_SCATTER
        ) - np.log(metal * np.log(10))
    out = np.empty((len(x), len(COMPONENTS)))
    for k, name in enumerate(COMPONENTS):
        if name == "thin":
            log_t = _thin_age_logpdf(t, _thin_tau(galaxy))
        else:
            log_t = _truncnorm_logpdf(t, *OLD_AGES[name])
        t_safe = np.clip(t, 0.0, T_MAX)
        if name in ("thin", "thick"):
            thick = name == "thick"
            r_d = _disk_scale(galaxy, t_safe, thick)
            h = _scale_height(galaxy, t_safe, thick)
            log_pos = -radius / r_d - np.log(2 * np.pi * r_d**2) - np.abs(z) / h - np.log(2 * h)
            mean_phi, s_r, s_phi, s_z = _disk_kinematics(galaxy, radius, t_safe, thick)
            log_vel = (_normal_logpdf(v_r, 0.0, s_r) + _normal_logpdf(v_phi, mean_phi, s_phi)
                       + _normal_logpdf(vz, 0.0, s_z))  # fmt: skip
        else:
            a = _hernquist_scale(galaxy, name)
            with np.errstate(divide="ignore"):
                log_pos = np.log(a / (2 * np.pi)) - np.log(r) - 3 * np.log(r + a)
            sigma = _spheroid_sigma(galaxy, name)
            log_vel = sum(_normal_logpdf(v, 0.0, sigma) for v in (vx, vy, vz))
        log_feh = _normal_logpdf(feh, _feh_mean(galaxy, name, t_safe, radius), FEH_SCATTER[name])
        ofe_mean, ofe_sigma = _ofe_mean(name, feh)
        log_ofe = _normal_logpdf(ofe, ofe_mean, ofe_sigma)
        out[:, k] = log_t + log_pos + log_vel + log_feh + log_ofe + log_z_density
    with np.errstate(divide="ignore"):
        return out + np.log(weights(galaxy))


def log_density(stars: np.ndarray, galaxy: Mapping[str, float]) -> np.ndarray:
    """Exact ln p(s) (n,) of stars (n, 10) under the galaxy, in the units of :data:`COLUMNS`."""
    parts = component_log_densities(stars, galaxy)
    top = parts.max(1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return (top + np.log(np.exp(parts - top).sum(1, keepdims=True)))[:, 0]


def global_parameters(stars: np.ndarray, log_mass: float) -> dict[str, float]:
    """The conditions of :data:`CONDITIONS` measured from a galaxy's stars (n, 10)."""
    age = stars[:, COLUMNS.index("age")]
    return {
        "log_mass": float(log_mass),
        "age_median": float(np.median(age)),
        "age_p10": float(np.percentile(age, 10)),
        "metallicity_mean": float(np.mean(stars[:, COLUMNS.index("Z")])),
    }


# ---- images -------------------------------------------------------------------------------------

BANDS = ("g", "r", "i")
IMAGE_HALF_WIDTH = 20.0  # kpc: the image spans ±20 kpc, about NIHAO's |x|, |y| range
PSF_SIGMA_KPC = 0.25
IMAGE_NOISE = 0.01  # of the stretched [0, 1] intensity


def stellar_light(stars: np.ndarray) -> np.ndarray:
    r"""Relative g, r, i luminosity per star (n, 3) from age and [Fe/H].

    A simple-stellar-population approximation: r-band light per unit mass fades as
    :math:`t^{-0.8}` and colours redden with age and metallicity,
    g − r = 0.25 + 0.22 log10(t / Gyr) + 0.33 [Fe/H] and r − i = 0.1 + 0.08 log10(t / Gyr) +
    0.12 [Fe/H], t ≥ 30 Myr — metallicity weighs 3/2 as much as log age (Worthey's 3/2 rule), so
    a metallicity gradient shows as a colour gradient.
    """
    log_t = np.log10(np.maximum(stars[:, COLUMNS.index("age")], 0.03))
    feh = stars[:, COLUMNS.index("feh")]
    log_r = -0.8 * log_t
    g_r = 0.25 + 0.22 * log_t + 0.33 * feh
    r_i = 0.1 + 0.08 * log_t + 0.12 * feh
    return 10 ** np.stack([log_r - 0.4 * g_r, log_r, log_r + 0.4 * r_i], 1)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation matrix (3, 3) (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def render_image(
    stars: np.ndarray, size: int, rotation: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A (3, size, size) float32 image in [0, 1] of the stars seen along the rotated z axis.

    Light of each band is binned on a ±:data:`IMAGE_HALF_WIDTH` kpc grid, blurred by a Gaussian
    PSF (:data:`PSF_SIGMA_KPC`), asinh-stretched with a scale set by the galaxy's total light
    (so dwarfs and giants both fill the dynamic range, like NIHAO's face-value renders), and
    given Gaussian noise.
    """
    xy = stars[:, :3] @ rotation.T
    light = stellar_light(stars)
    edges = np.linspace(-IMAGE_HALF_WIDTH, IMAGE_HALF_WIDTH, size + 1)
    pixel = 2 * IMAGE_HALF_WIDTH / size
    image = np.stack([
        np.histogram2d(xy[:, 1], xy[:, 0], bins=(edges, edges), weights=light[:, b])[0]
        for b in range(3)
    ])  # fmt: skip
    image = gaussian_filter(image, sigma=(0, PSF_SIGMA_KPC / pixel, PSF_SIGMA_KPC / pixel))
    scale = light[:, 1].sum() / size**2 * 4.0
    image = np.arcsinh(image / scale) / np.arcsinh(1e3)
    image = image + IMAGE_NOISE * rng.standard_normal(image.shape)
    return np.clip(image, 0, 1).astype(np.float32)
