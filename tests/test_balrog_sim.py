"""Balrog study: renderer, observing conditions, deep-field truth, measurement, loader errors."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from scipy.special import erf

from astrogen.io.balrog import BalrogCatalogueError, load_balrog_catalogue
from astrogen.sims import balrog
from astrogen.sims.balrog import (
    BANDS,
    DEPTH_RANGES,
    PIXEL_SCALE,
    PSF_FWHM_RANGES,
    DeepCatalogue,
    SurveyFootprint,
    inject_fixed,
    mag_to_flux,
    measure,
    point_source_depth,
    render_stamps,
    run_injections,
    sample_deep_catalogue,
)
from astrogen.sims.sersic import SERSIC_MIXTURES, mixture_enclosed_flux, sersic_enclosed_flux

FOOTPRINT = SurveyFootprint()


def _galaxy(mag=20.0, radius=0.5, n=1, q=0.6, angle=0.4) -> DeepCatalogue:
    return DeepCatalogue(
        deep_id=np.array([0]),
        mag=np.full((1, 3), mag),
        half_light_radius=np.array([radius]),
        sersic_n=np.array([n]),
        axis_ratio=np.array([q]),
        position_angle=np.array([angle]),
    )


@pytest.mark.parametrize(("n", "r_max", "tol"), [(1, 6.0, 1e-3), (4, 8.0, 0.035)])
def test_sersic_mixtures_follow_the_sersic_laws(n, r_max, tol):
    amp, _ = SERSIC_MIXTURES[n]
    r = np.linspace(0.05, r_max, 200)
    np.testing.assert_allclose(mixture_enclosed_flux(n, r), sersic_enclosed_flux(n, r), atol=tol)
    np.testing.assert_allclose(amp.sum(), 1.0, atol=1e-7)  # total flux
    np.testing.assert_allclose(mixture_enclosed_flux(n, 1.0), 0.5, atol=1e-7)  # half-light r_e


@pytest.mark.parametrize("n", [1, 4])
def test_renderer_conserves_flux(n):
    psf = np.array([[0.7, 1.0, 1.3]])
    image = render_stamps(_galaxy(n=n), np.array([0.3]), np.array([-0.4]), np.array([0]), psf, 151)
    np.testing.assert_allclose(image.sum(axis=(2, 3)), mag_to_flux(20.0), rtol=1e-3)


def test_point_source_has_the_requested_psf_and_exact_pixel_integrals():
    fwhm = np.array([[0.7, 1.0, 1.3]])
    x0, y0 = 0.3, -0.2
    image = render_stamps(
        _galaxy(radius=0.0), np.array([x0]), np.array([y0]), np.array([0]), fwhm, 41
    )[0]
    grid = np.arange(41) - 20.0
    flux = mag_to_flux(20.0)
    for band in range(3):
        # the pixel response adds exactly 1/12 px² to the second moment
        m2 = np.sum(image[band] * (grid[None, :] - x0) ** 2) / image[band].sum()
        measured = np.sqrt(m2 - 1 / 12) * balrog.FWHM_PER_SIGMA * PIXEL_SCALE
        assert abs(measured / fwhm[0, band] - 1) < 0.01
        # each pixel against the exact integral of the Gaussian over its area
        sigma = balrog.psf_sigma_pixels(fwhm[0, band])
        edges = np.append(grid - 0.5, grid[-1] + 0.5)
        px = np.diff(erf((edges - x0) / (np.sqrt(2) * sigma))) / 2
        py = np.diff(erf((edges - y0) / (np.sqrt(2) * sigma))) / 2
        exact = flux * np.outer(py, px)
        assert np.abs(image[band] - exact).max() < 2e-3 * exact.max()


def test_footprint_depths_and_seeing_span_the_specified_ranges():
    rng = np.random.default_rng(0)
    ra, dec = FOOTPRINT.sample_positions(20_000, rng)
    conditions = FOOTPRINT.conditions(ra, dec)
    for band in BANDS:
        fwhm, sky = conditions[band]
        depth = point_source_depth(fwhm, sky)
        lo, hi = DEPTH_RANGES[band]
        assert lo - 1e-6 <= depth.min() and depth.max() <= hi + 1e-6
        assert np.ptp(depth) > 0.9 * (hi - lo)
        lo, hi = PSF_FWHM_RANGES[band]
        assert 0.7 <= lo <= fwhm.min() and fwhm.max() <= hi <= 1.3
        assert np.ptp(fwhm) > 0.8 * (hi - lo)
    # smooth: conditions 0.01 deg apart differ far less than across the patch
    near = FOOTPRINT.conditions(ra[:100] + 0.01, dec[:100])
    assert np.abs(near["i"][0] - conditions["i"][0][:100]).max() < 0.02
    same = SurveyFootprint().conditions(ra[:100], dec[:100])
    np.testing.assert_array_equal(same["z"][1], conditions["z"][1][:100])


def test_deep_catalogue_counts_colours_and_morphology():
    cat = sample_deep_catalogue(200_000, np.random.default_rng(1))
    i = cat.mag[:, 1]
    assert i.min() >= 18.0 and i.max() <= 25.5
    counts, edges = np.histogram(i, bins=np.arange(18.5, 25.01, 0.5))
    slope = np.polyfit(edges[:-1], np.log10(counts), 1)[0]
    assert abs(slope - 0.33) < 0.01
    red = cat.sersic_n == 4
    assert red[i < 20].mean() > 0.4 > 0.2 > red[i > 24].mean()
    assert np.median((cat.mag[:, 0] - i)[red]) > np.median((cat.mag[:, 0] - i)[~red]) + 0.3
    assert np.median(cat.half_light_radius[i < 20]) > 2 * np.median(cat.half_light_radius[i > 24])
    assert set(np.unique(cat.sersic_n)) == {1, 4} and np.all(cat.axis_ratio <= 1)
    np.testing.assert_array_equal(cat.deep_id, np.arange(len(cat)))


def test_bright_isolated_galaxy_is_measured_without_bias():
    galaxy = _galaxy(mag=20.0, radius=0.6, n=1)
    ra, dec = 45.0, -30.0
    fwhm, sky = FOOTPRINT.condition_arrays(np.array([ra]), np.array([dec]))
    frame = inject_fixed(galaxy, ra, dec, 40, seed=2, footprint=FOOTPRINT, neighbour_density=0.0)
    assert frame["detected"].all()
    # the same galaxy without noise, measured through the same Kron aperture
    noiseless = render_stamps(galaxy, np.zeros(1), np.zeros(1), np.array([0]), fwhm, 41)
    reference = measure(noiseless, sky, np.zeros(1), np.zeros(1))["flux"][0]
    for c, band in enumerate(BANDS):
        flux = frame[f"obs_flux_{band}"]
        assert abs(flux.mean() / reference[c] - 1) < 0.01
        assert 0.95 < reference[c] / mag_to_flux(20.0) <= 1.0  # Kron misses a few per cent
        # the reported errors describe the scatter, to which the noisy Kron radius adds a little
        assert 0.8 < flux.std() / frame[f"obs_flux_err_{band}"].median() < 1.5


def test_injection_catalogue_columns_detection_and_reproducibility():
    frame = run_injections(600, seed=3, repeats=3, progress=False)
    expected = ["deep_id", "injection_id", "ra", "dec"]
    for band in BANDS:
        expected += [f"{p}_{band}" for p in ("true_mag", "obs_mag", "obs_flux", "obs_flux_err")]
    expected += [f"{p}_{band}" for band in BANDS for p in ("psf_fwhm", "sky_sigma")]
    assert list(frame.columns) == [*expected, "detected"]
    assert len(frame) == 600 and (frame["deep_id"].value_counts() == 3).all()
    # repeats of one galaxy share the truth but not the position
    first = frame[frame["deep_id"] == frame["deep_id"].iloc[0]]
    assert first["true_mag_i"].nunique() == 1 and first["ra"].nunique() == 3
    bright, faint = frame["true_mag_i"] < 22.5, frame["true_mag_i"] > 25.0
    assert frame["detected"][bright].mean() > 0.9 > 0.3 > frame["detected"][faint].mean()
    lost = ~frame["detected"]
    assert frame.loc[lost, "obs_flux_r"].isna().all() and frame.loc[lost, "obs_mag_z"].isna().all()
    found = frame[frame["detected"]]
    assert np.isfinite(found[[f"obs_flux_{b}" for b in BANDS]].to_numpy()).all()
    assert (found["obs_mag_z"].isna() == (found["obs_flux_z"] <= 0)).all()
    assert frame.attrs["injections_per_second"] > 0

    again = run_injections(600, seed=3, repeats=3, progress=False)
    pd.testing.assert_frame_equal(frame, again)
    other = run_injections(50, seed=4, repeats=3, progress=False)
    assert not np.allclose(other["ra"], frame["ra"][:50])


# loader ---------------------------------------------------------------------------------------
TRUE = {"r": "TRUE_FLUX_R", "i": "TRUE_FLUX_I"}
OBS = {"r": "FLUX_R", "i": "FLUX_I"}
COND = {"psf_fwhm_r": "FWHM_R", "sky_sigma_r": "SKY_R"}


def _write(tmp_path, **changes) -> str:
    frame = pd.DataFrame(
        {
            "TRUE_FLUX_R": [1000.0, 100.0, 10.0],
            "TRUE_FLUX_I": [1200.0, 120.0, 12.0],
            "FLUX_R": [990.0, -5.0, -9999.0],
            "FLUX_I": [1210.0, 130.0, -9999.0],
            "DETECTED": [1, 1, 0],
            "FWHM_R": [0.9, 1.0, 1.1],
            "SKY_R": [3.0, 3.1, 3.2],
        }
    )
    for column, values in changes.items():
        if values is None:
            frame = frame.drop(columns=column)
        else:
            frame[column] = values
    path = tmp_path / "balrog.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _load(path):
    return load_balrog_catalogue(path, TRUE, OBS, "DETECTED", COND)


def test_loader_reads_the_simulator_convention(tmp_path):
    frame = _load(_write(tmp_path))
    np.testing.assert_allclose(frame["true_mag_r"], [22.5, 25.0, 27.5])
    np.testing.assert_allclose(frame["obs_mag_r"], [30 - 2.5 * np.log10(990.0), np.nan, np.nan])
    assert frame["obs_flux_r"].iloc[1] == -5.0  # negative fluxes stay, their magnitude is NaN
    assert np.isnan(frame["obs_flux_i"].iloc[2])  # the sentinel of a non-detection is dropped
    assert frame["detected"].tolist() == [True, True, False]
    assert {"deep_id", "injection_id", "psf_fwhm_r", "sky_sigma_r"} <= set(frame.columns)


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"FLUX_I": None}, ["'FLUX_I'", "missing", "TRUE_FLUX_R"]),
        ({"TRUE_FLUX_R": [1.0, np.nan, 2.0]}, ["'TRUE_FLUX_R'", "NaN", "[1]"]),
        ({"SKY_R": [3.0, 3.0, np.nan]}, ["'SKY_R'", "condition sky_sigma_r", "[2]"]),
        ({"TRUE_FLUX_I": [1.0, 0.0, -2.0]}, ["'TRUE_FLUX_I'", "non-positive", "[1, 2]"]),
        ({"DETECTED": [1, 2, 0]}, ["'DETECTED'", "0/1", "'2'"]),
        ({"DETECTED": ["yes", "no", "no"]}, ["'DETECTED'", "'yes'"]),
        ({"FLUX_R": [np.nan, 1.0, 1.0]}, ["'FLUX_R'", "detected row"]),
    ],
)
def test_loader_errors_name_file_column_and_expectation(tmp_path, changes, fragments):
    path = _write(tmp_path, **changes)
    with pytest.raises(BalrogCatalogueError) as err:
        _load(path)
    for fragment in [path, *fragments]:
        assert fragment in str(err.value)


def test_loader_refuses_unknown_formats_and_missing_readers(tmp_path):
    (tmp_path / "x.txt").touch()
    with pytest.raises(BalrogCatalogueError, match="unknown format"):
        _load(tmp_path / "x.txt")
    readers = {"x.parquet": ("pyarrow", "fastparquet"), "x.fits": ("astropy",)}
    for name, modules in readers.items():
        if not any(importlib.util.find_spec(m) for m in modules):
            (tmp_path / name).touch()
            with pytest.raises(BalrogCatalogueError, match=f"needs {modules[0]}"):
                _load(tmp_path / name)


def test_parquet_and_fits_catalogues_load_like_the_csv(tmp_path):
    from astropy.table import Table

    csv = _write(tmp_path)
    frame = pd.read_csv(csv)
    frame.to_parquet(tmp_path / "balrog.parquet")
    Table.from_pandas(frame).write(tmp_path / "balrog.fits")
    expected = _load(csv)
    for name in ("balrog.parquet", "balrog.fits"):
        pd.testing.assert_frame_equal(_load(tmp_path / name), expected, check_dtype=False)
