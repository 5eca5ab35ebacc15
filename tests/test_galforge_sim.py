"""Mock NIHAO-like galaxies: exact density normalises and matches the sampler; cleaning; loader."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate

from astrogen.io.anomaly import ImageFolderError
from astrogen.io.galforge import (
    GalaxyFileError,
    clean_galaxy,
    load_galaxy,
    load_population,
    write_population,
)
from astrogen.sims import galforge as gf
from astrogen.studies import galforge as study


@pytest.fixture(scope="module")
def galaxies():
    return gf.sample_galaxies(40, np.random.default_rng(0))


def _pick(galaxies, low: bool):
    return galaxies.sort_values("log_mass").iloc[0 if low else -1]


@pytest.mark.parametrize("low", [True, False])
def test_log_density_normalises_by_importance_sampling(galaxies, low):
    """E_q[p/q] = 1 for a proposal q (another galaxy, wider and hotter) covering p."""
    galaxy = _pick(galaxies, low)
    proposal = dict(galaxy)
    proposal.update(disk_scale=1.3 * galaxy["disk_scale"], v_max=1.2 * galaxy["v_max"],
                    spin=0.8 * galaxy["spin"])  # fmt: skip
    x = gf.sample_stars(proposal, 200_000, np.random.default_rng(1))
    w = np.exp(gf.log_density(x, galaxy) - gf.log_density(x, proposal))
    assert abs(w.mean() - 1) < 4 * w.std() / np.sqrt(len(w)) + 0.005


@pytest.mark.parametrize("low", [True, False])
def test_sampler_follows_the_density(galaxies, low):
    """Stars drawn from p, weighted by p_perturbed / p, average 1: the sampler is p's."""
    galaxy = _pick(galaxies, low)
    x = gf.sample_stars(galaxy, 200_000, np.random.default_rng(2))
    other = dict(galaxy)
    other.update(gradient=1.5 * galaxy["gradient"], feh_zero=galaxy["feh_zero"] + 0.05)
    w = np.exp(gf.log_density(x, other) - gf.log_density(x, galaxy))
    assert abs(w.mean() - 1) < 4 * w.std() / np.sqrt(len(w)) + 0.005
    # a wrong density (scale lengths off by 10 %) is caught by the same statistic
    wrong = dict(galaxy, disk_scale=1.1 * galaxy["disk_scale"])
    assert np.mean(gf.log_density(x, galaxy)) > np.mean(gf.log_density(x, wrong)) + 0.01


def test_one_dimensional_factors_normalise(galaxies):
    galaxy = _pick(galaxies, False)
    for tau in (gf._thin_tau(galaxy), -3.0, 20.0):
        total, _ = integrate.quad(
            lambda t, tau=tau: np.exp(gf._thin_age_logpdf(np.array(t), tau)), 0, gf.T_MAX
        )
        assert total == pytest.approx(1, abs=1e-8)
    for mean, sigma in gf.OLD_AGES.values():
        total, _ = integrate.quad(
            lambda t, m=mean, s=sigma: np.exp(gf._truncnorm_logpdf(np.array(t), m, s)), 0, gf.T_MAX
        )
        assert total == pytest.approx(1, abs=1e-8)


def test_ranges_resemble_nihao(galaxies):
    rng = np.random.default_rng(3)
    dwarf, massive = _pick(galaxies, True), _pick(galaxies, False)
    d, m = gf.sample_stars(dwarf, 50_000, rng), gf.sample_stars(massive, 50_000, rng)
    sigma = lambda s: np.sqrt(s[:, 3:5].var(0).mean())  # noqa: E731  in-plane spread
    assert 30 < sigma(d) < 60 and 150 < sigma(m) < 250
    radius = np.hypot(m[:, 0], m[:, 1])
    assert np.percentile(radius, 95) < 28
    for s in (d, m):
        age, feh, z = s[:, 9], s[:, 7], s[:, 6]
        assert age.min() >= 0 and age.max() <= gf.T_MAX and (z > 0).all()
        assert feh.min() > -4.5 and feh.max() < 1.0
    # two [O/Fe] sequences: thick-disk stars are α-enhanced at the same [Fe/H]
    parts = gf.component_log_densities(m, massive)
    comp = parts.argmax(1)
    band = (m[:, 7] > -0.8) & (m[:, 7] < -0.4)
    assert m[band & (comp == 1), 8].mean() > m[band & (comp == 0), 8].mean() + 0.1


def test_global_parameters_are_measured_from_stars(galaxies):
    galaxy = _pick(galaxies, False)
    stars = gf.sample_stars(galaxy, 20_000, np.random.default_rng(4))
    p = gf.global_parameters(stars, galaxy["log_mass"])
    assert list(p) == list(gf.CONDITIONS)
    assert p["age_p10"] < p["age_median"] and 0 < p["metallicity_mean"] < 0.1


def test_cleaning_on_a_crafted_galaxy():
    stars = np.tile([1.0, 0.0, 0.0, 0.0, 200.0, 0.0, 0.01, 0.0, 0.1, 5.0], (100, 1))
    stars[:, 0] = np.arange(1, 101)  # radii 1 … 100 kpc
    stars[3, 6] = -1e-4  # negative Z
    stars[4, 7] = -9.0  # below the metallicity floor
    stars[5, 9] = 14.5  # older than the Universe
    kept, report = clean_galaxy(stars, radius_percentile=95, max_radius=50.0, min_stars=10)
    assert report["r_cut"] == 50.0 and report["removed_radius"] == 50
    assert report["removed_metallicity"] == 2 and report["removed_age"] == 1
    assert report["n_out"] == len(kept) == 47 and report["keep"]
    kept, report = clean_galaxy(stars, radius_percentile=90, max_radius=200.0, min_stars=95)
    assert report["r_cut"] == pytest.approx(np.percentile(np.arange(1, 101), 90))
    assert not report["keep"]


def test_loader_round_trip_and_errors(tmp_path):
    stars = gf.sample_stars(gf.sample_galaxies(1, np.random.default_rng(5)).iloc[0], 100,
                            np.random.default_rng(6))  # fmt: skip
    np.savez(tmp_path / "g.npz", stars=stars, log_mass=9.5)
    got, log_mass = load_galaxy(tmp_path / "g.npz")
    np.testing.assert_array_equal(got, stars)
    assert log_mass == 9.5
    np.save(tmp_path / "g.npy", stars)
    assert load_galaxy(tmp_path / "g.npy", log_mass=9.5)[1] == 9.5
    with pytest.raises(GalaxyFileError, match=r"g\.npy: a \.npy holds only stars; pass log_mass"):
        load_galaxy(tmp_path / "g.npy")
    np.savez(tmp_path / "bad.npz", stars=stars[:, :9], log_mass=9.5)
    with pytest.raises(
        GalaxyFileError, match=r"bad\.npz: 'stars' has shape \(100, 9\); expected \(N, 10\)"
    ):
        load_galaxy(tmp_path / "bad.npz")
    broken = stars.copy()
    broken[7, 8] = np.nan
    np.savez(tmp_path / "nan.npz", stars=broken, log_mass=9.5)
    with pytest.raises(GalaxyFileError, match=r"nan\.npz: 1 star\(s\) with NaN.*'ofe'"):
        load_galaxy(tmp_path / "nan.npz")
    np.savez(tmp_path / "nomass.npz", stars=stars)
    with pytest.raises(GalaxyFileError, match="no scalar 'log_mass'"):
        load_galaxy(tmp_path / "nomass.npz")
    with pytest.raises(GalaxyFileError, match="no such file"):
        load_galaxy(tmp_path / "missing.npz")


def test_images_show_a_disk_face_on_and_edge_on():
    galaxies = gf.sample_galaxies(40, np.random.default_rng(7))
    galaxy = galaxies[galaxies["bulge_fraction"] < 0.3].sort_values("log_mass").iloc[-1]
    stars = gf.sample_stars(galaxy, 40_000, np.random.default_rng(8))
    rng = np.random.default_rng(9)
    edge_on = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # the disk's z axis → image y

    def axis_ratio(image):
        light = image.sum(0) - np.median(image.sum(0))
        light = np.where(light > 5 * np.sqrt(3) * gf.IMAGE_NOISE, light, 0.0)  # drop the noise
        yy, xx = np.indices(light.shape)
        w = light / light.sum()
        var_x = (w * (xx - (w * xx).sum()) ** 2).sum()
        var_y = (w * (yy - (w * yy).sum()) ** 2).sum()
        return np.sqrt(var_y / var_x)

    face = gf.render_image(stars, 64, np.eye(3), rng)
    edge = gf.render_image(stars, 64, edge_on, rng)
    assert face.shape == (3, 64, 64) and face.dtype == np.float32
    assert face.min() >= 0 and face.max() <= 1
    assert axis_ratio(face) == pytest.approx(1.0, abs=0.15)
    assert axis_ratio(edge) < 0.6
    rotation = gf.random_rotation(rng)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)


def test_young_metal_poor_stars_are_bluer():
    stars = np.zeros((2, 10))
    stars[:, 9] = [0.5, 10.0]  # ages [Gyr]
    stars[:, 7] = [-1.0, 0.2]  # [Fe/H]
    light = gf.stellar_light(stars)
    g_r = -2.5 * np.log10(light[:, 0] / light[:, 1])
    assert g_r[0] < g_r[1] and light[0, 1] > light[1, 1]


def test_named_conditions_refuse_a_different_order():
    named = study.NamedConditions(gf.CONDITIONS)
    table = {"metallicity_mean": [0.01], "log_mass": [9.0], "age_p10": [2.0], "age_median": [7.0]}
    np.testing.assert_array_equal(named.matrix(table), [[9.0, 7.0, 2.0, 0.01]])
    named.check(gf.CONDITIONS)
    with pytest.raises(study.ConditionOrderError, match="trained with"):
        named.check(("age_median", "log_mass", "age_p10", "metallicity_mean"))
    with pytest.raises(KeyError, match=r"\['age_p10'\] missing"):
        named.matrix({k: v for k, v in table.items() if k != "age_p10"})


def test_galaxies_split_exactly_and_star_counts_grow_with_mass():
    labels = study.split_galaxies(90, seed=0)
    assert {k: int((labels == k).sum()) for k in ("train", "val", "test")} == {
        "train": 63, "val": 9, "test": 18,
    }  # fmt: skip
    np.testing.assert_array_equal(study.star_count(np.array([7.5, 11.0]), 1000, 8000), [1000, 8000])


def test_population_folder_round_trip_cleaning_and_errors(tmp_path):
    rng = np.random.default_rng(7)
    table = gf.sample_galaxies(3, rng)
    stars = [
        gf.sample_stars(g, n, rng)
        for (_, g), n in zip(table.iterrows(), (1500, 1200, 400), strict=True)
    ]
    images = np.stack(
        [gf.render_image(s, 24, gf.random_rotation(rng), rng) for s in stars for _ in (0, 1)]
    )
    data = {
        "galaxies": pd.DataFrame({"name": ["a", "b", "c"], "log_mass": table["log_mass"]}),
        "stars": np.concatenate(stars), "star_galaxy": np.repeat(np.arange(3), [1500, 1200, 400]),
        "images": images, "image_galaxy": np.repeat(np.arange(3), 2),
    }  # fmt: skip
    root = write_population(tmp_path / "pop", data)
    got = load_population(root, image_size=12)
    # "c" has 400 < 1000 stars and is dropped, as GalacticFlow drops small galaxies
    assert list(got["galaxies"]["name"]) == ["a", "b"]
    assert got["images"].shape == (4, 3, 12, 12) and list(got["image_galaxy"]) == [0, 0, 1, 1]
    # 24² → 12² by area averaging keeps the mean brightness (8-bit rounding aside)
    np.testing.assert_allclose(got["images"][0].mean(), images[0].mean(), atol=3e-3)
    kept, _ = clean_galaxy(stars[0])
    np.testing.assert_allclose(got["stars"][got["star_galaxy"] == 0], kept, rtol=1e-6)
    expected = gf.global_parameters(kept, table["log_mass"].iloc[0])
    for key, value in expected.items():
        assert got["galaxies"].loc[0, key] == pytest.approx(value, rel=1e-5)

    (root / "galaxies" / "d.npy").write_bytes(b"")
    with pytest.raises(GalaxyFileError, match=r"galaxies\.csv: no such file; \.npy galaxies need"):
        load_population(root, image_size=12)
    (root / "galaxies" / "d.npy").unlink()
    for path in (root / "images" / "b").iterdir():
        path.unlink()
    with pytest.raises(ImageFolderError, match=r"images/b: no images"):
        load_population(root, image_size=12)
    (root / "images" / "b").rmdir()
    with pytest.raises(GalaxyFileError, match=r"images/b: no such directory"):
        load_population(root, image_size=12)
    with pytest.raises(GalaxyFileError, match=r"nowhere/galaxies: no such directory"):
        load_population(tmp_path / "nowhere", image_size=12)


def test_cost_of_unknown_properties_is_zero_when_known_and_positive_when_not(monkeypatch):
    rng = np.random.default_rng(3)
    galaxies = gf.sample_galaxies(2, rng)
    galaxies["split"] = "test"
    stars = [gf.sample_stars(g, 1500, rng) for _, g in galaxies.iterrows()]
    data = {"galaxies": galaxies, "stars": np.concatenate(stars),
            "star_galaxy": np.repeat([0, 1], 1500)}  # fmt: skip
    floor = study.cost_of_unknown_properties(data, seed=0, n_draws=24)
    assert list(floor.columns) == [*study.UNKNOWABLE, "all"]
    # a mixture can only lose against the true density: clearly positive for all properties
    # together, and never below Monte Carlo noise for one
    assert (floor["all"] > 0.05).all() and (floor.to_numpy() > -0.02).all()
    # if the "prior" draws are the galaxy itself, the mixture is the truth and the floor is zero
    monkeypatch.setattr(
        study, "sample_galaxies",
        lambda n, rng, log_mass: pd.concat([galaxies[galaxies["log_mass"] == log_mass]] * n),
    )  # fmt: skip
    assert np.allclose(study.cost_of_unknown_properties(data, seed=0, n_draws=4), 0.0, atol=1e-9)


def test_c2st_of_unknown_properties_is_chance_when_known_and_higher_when_not():
    rng = np.random.default_rng(4)
    galaxies = gf.sample_galaxies(3, rng)
    galaxies["split"] = "test"
    stars = [gf.sample_stars(g, 600, rng) for _, g in galaxies.iterrows()]
    masses = galaxies["log_mass"].to_numpy()
    for key in ("age_median", "age_p10", "metallicity_mean"):
        galaxies[key] = [
            gf.global_parameters(s, m)[key] for s, m in zip(stars, masses, strict=True)
        ]
    data = {"galaxies": galaxies, "stars": np.concatenate(stars),
            "star_galaxy": np.repeat([0, 1, 2], 600)}  # fmt: skip
    auc = study.c2st_of_unknown_properties(data, seed=0, sets={"none": (), "all": study.UNKNOWABLE})
    # fresh draws of the same galaxy cannot be told from its stars; a galaxy whose every
    # hidden property is redrawn from the prior can
    assert abs(auc["none"] - 0.5) < 0.04
    assert auc["all"] > auc["none"] + 0.05


def test_one_extreme_sample_sets_the_mean_w1_but_not_the_median():
    rng = np.random.default_rng(0)
    n, n_galaxies = 400, 3

    def draw() -> np.ndarray:
        stars = rng.normal(size=(n, 10))
        stars[:, 6] = rng.uniform(0.01, 0.03, n)  # Z > 0
        stars[:, 9] = rng.uniform(1.0, 12.0, n)  # 0 ≤ age ≤ 13.8 Gyr
        return stars

    stars = np.concatenate([draw() for _ in range(n_galaxies)])
    samples = [draw() for _ in range(n_galaxies)]
    samples[1][0, 0] = 1e8  # one star of one galaxy flung far out along x

    class Replay:  # an "estimator" that returns the prepared samples in galaxy order
        def log_prob(self, x, c):
            return torch.zeros(len(x), dtype=torch.float64)

        def sample(self, count, context):
            return torch.as_tensor(samples.pop(0)[:count])

    conditions = {"split": "test", "log_mass": 10.0, "age_median": 6.5, "age_p10": 2.0,
                  "metallicity_mean": 0.02}  # fmt: skip
    galaxies = pd.DataFrame(conditions, index=range(n_galaxies))
    data = {"galaxies": galaxies, "stars": stars, "simulated": False,
            "star_galaxy": np.repeat(np.arange(n_galaxies), n)}  # fmt: skip
    per_galaxy, pooled = study.evaluate_flow(
        Replay(), ["log_mass"], data, galaxies, seed=0, max_stars=n, image_latents=None
    )
    assert per_galaxy.loc[1, "w1_x"] > 1e4 and pooled["w1_mean"] > 1e3
    assert pooled["w1_median"] < 0.3 and pooled["sliced_w1_median"] < 0.3  # two clean galaxies
    assert pooled["max_z"] > 1e7 and pooled["max_z_truth"] < 10


def test_projection_conditions_give_each_view_its_latent():
    table = pd.DataFrame({"log_mass": [9.0, 10.0], "z0": [0.5, 2.0], "z1": [-1.0, 1.0]})
    latents = np.array([[0.0, -2.0], [1.0, 0.0], [1.5, 0.5], [2.5, 1.5]])
    data = {"image_galaxy": np.array([0, 0, 1, 1])}
    names = ("log_mass", "z0", "z1")
    rows = study.projection_conditions(names, table, data, latents, 1)
    np.testing.assert_array_equal(rows, [[10.0, 1.5, 0.5], [10.0, 2.5, 1.5]])
    np.testing.assert_array_equal(  # no latent among the conditions: one row
        study.projection_conditions(("log_mass",), table, data, latents, 1), [[10.0]]
    )


def test_held_out_density_mixes_a_galaxys_projections_or_takes_its_mean_latent():
    table = pd.DataFrame({"log_mass": [9.0, 10.0], "z0": [0.5, 2.0]})
    latents = np.array([[0.0], [1.0], [1.5], [2.5], [3.0]])
    data = {"image_galaxy": np.array([0, 0, 1, 1, 1])}
    mixed = study.held_out_density(None, ("log_mass", "z0"), table, data, latents, 1)
    np.testing.assert_array_equal(mixed.contexts, [[10.0, 1.5], [10.0, 2.5], [10.0, 3.0]])
    mean = study.held_out_density(None, ("log_mass", "z0"), table, data, None, 1)
    np.testing.assert_array_equal(mean.contexts, [[10.0, 2.0]])
