"""Every loader meets its bad inputs with a clear error (file, field, expectation) or a warning
that says what was dropped and why."""

import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from astrogen.constants import KPC
from astrogen.io.anomaly import ImageFolderError, load_image_folder, load_rating_folder
from astrogen.io.balrog import BalrogCatalogueError, load_balrog_catalogue
from astrogen.io.clusters import ClusterTableError, load_cluster_tables, load_embeddings
from astrogen.io.galforge import GalaxyFileError, load_galaxy, load_population, write_population
from astrogen.io.hernquist import CatalogueFormatError, load_phase_space_npz
from astrogen.sims import galforge as gf

# every test here feeds a loader one bad input and asserts its exact error or warning
pytestmark = pytest.mark.bad_input


def _write(path, text):
    path.write_text(text)
    return path


def _png_bytes(size=64):
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), 100, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# clusters -------------------------------------------------------------------------------------
def _tables(tmp_path, x_ids, y_ids):
    xc = _write(tmp_path / "X.csv", "id,lx\n" + "".join(f"{k},{i}\n" for i, k in enumerate(x_ids)))
    yc = _write(
        tmp_path / "Y.csv", "id,m\n" + "".join(f"{k},{14 + i}\n" for i, k in enumerate(y_ids))
    )
    return xc, yc


def test_clusters_half_overlapping_ids_warn_with_counts_and_examples(tmp_path):
    xc, yc = _tables(tmp_path, [f"c{i}" for i in range(100)], [f"c{i}" for i in range(50, 150)])
    with pytest.warns(UserWarning) as record:
        table = load_cluster_tables(xc, yc, ["lx"], ["m"], id_column="id")
    assert len(table.x) == 50
    (message,) = [str(w.message) for w in record]
    assert "joining on column 'id' dropped unmatched ids" in message
    assert re.search(
        r"50 of 100 row\(s\) of .*X\.csv have no partner in .*Y\.csv, e\.g\. \['c0'", message
    )
    assert re.search(r"50 of 100 row\(s\) of .*Y\.csv have no partner .*\['c100'", message)
    assert "50 cluster(s) are kept" in message


@pytest.mark.control
def test_clusters_fully_matching_ids_do_not_warn_and_mixed_id_types_join(tmp_path):
    xc = _write(tmp_path / "X.csv", "id,lx\n1,1.0\n2,2.0\n")
    yc = _write(tmp_path / "Y.csv", "id,m\n2,14.0\n1,13.0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = load_cluster_tables(xc, yc, ["lx"], ["m"], id_column="id")
    assert table.ids.tolist() == ["1", "2"]
    np.testing.assert_allclose(table.theta[:, 0], [13.0, 14.0])
    text = _write(tmp_path / "Yt.csv", "id,m\nb,1\n")
    with pytest.raises(
        ClusterTableError, match=r"X\.csv and .*Yt\.csv: no common ids in column 'id'"
    ):
        load_cluster_tables(xc, text, ["lx"], ["m"], id_column="id")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"X\.csv: empty file \(0 bytes\); expected a CSV table with a header"),
        (b"\n\n", r"X\.csv: not a readable CSV table \(EmptyDataError"),
        (b"id,lx\n", r"X\.csv: no rows \(only the header \['id', 'lx'\]\)"),
        (b"PAR1" + bytes(range(200)), r"X\.csv: a Parquet file, not a CSV table"),
        (b"SIMPLE  =                    T" + b" " * 50, r"X\.csv: a FITS file, not a CSV table"),
        (b"\x93NUMPY\x01\x00" + b"\x00" * 50, r"X\.csv: a \.npy array, not a CSV table"),
        (b"PK\x03\x04" + b"\x00" * 50, r"X\.csv: a zip archive \(\.npz\?\), not a CSV table"),
        (b"id,lx\n\xff\xfe\xfa,1\n", r"X\.csv: not a readable CSV table \(UnicodeDecodeError"),
        (b'id,lx\n"a,1\n', r"X\.csv: not a readable CSV table \(ParserError"),
    ],
)
def test_clusters_unreadable_tables_name_the_file(tmp_path, content, message):
    (tmp_path / "X.csv").write_bytes(content)
    yc = _write(tmp_path / "Y.csv", "id,m\na,1\n")
    with pytest.raises(ClusterTableError, match=message):
        load_cluster_tables(tmp_path / "X.csv", yc, ["lx"], ["m"], id_column="id")


def test_clusters_empty_ids_and_empty_meta_are_refused(tmp_path):
    xc = _write(tmp_path / "X.csv", "id,lx\na,1\n,2\n")
    yc = _write(tmp_path / "Y.csv", "id,m\na,1\nb,2\n")
    with pytest.raises(
        ClusterTableError, match=r"X\.csv: column 'id' has 1 empty id\(s\) \(first rows \[1\]\)"
    ):
        load_cluster_tables(xc, yc, ["lx"], ["m"], id_column="id")
    (tmp_path / "meta.csv").write_bytes(b"")
    with pytest.raises(ClusterTableError, match=r"meta\.csv: empty file \(0 bytes\)"):
        load_cluster_tables(xc, yc, ["lx"], ["m"], meta_csv=tmp_path / "meta.csv")


def test_clusters_embedding_files_of_the_wrong_kind(tmp_path):
    ids = np.array(["a", "b"])
    np.save(tmp_path / "names.npy", np.array(["a.png", "b.png"]))
    np.savez(tmp_path / "emb.npz", emb=np.ones((2, 3)))
    (tmp_path / "emb.npy").write_bytes((tmp_path / "emb.npz").read_bytes())  # an .npz named .npy
    with pytest.raises(
        ClusterTableError,
        match=r"emb\.npy: a \.npz archive \(keys \['emb'\]\); expected a single \.npy",
    ):
        load_embeddings(tmp_path / "emb.npy", tmp_path / "names.npy", ids)
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(
        ClusterTableError,
        match=r"empty\.npy: empty file \(0 bytes\); expected a \.npy of embeddings",
    ):
        load_embeddings(tmp_path / "empty.npy", tmp_path / "names.npy", ids)
    np.save(tmp_path / "good.npy", np.ones((2, 3)))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "good.npy").read_bytes()[:100])
    with pytest.raises(ClusterTableError, match=r"cut\.npy: not a readable \.npy array"):
        load_embeddings(tmp_path / "cut.npy", tmp_path / "names.npy", ids)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None]), allow_pickle=True)
    with pytest.raises(
        ClusterTableError, match=r"objects\.npy: not a readable \.npy array .*no pickled"
    ):
        load_embeddings(tmp_path / "objects.npy", tmp_path / "names.npy", ids)
    with pytest.raises(
        ClusterTableError, match=r"missing\.npy: file not found; expected a \.npy of file names"
    ):
        load_embeddings(tmp_path / "good.npy", tmp_path / "missing.npy", ids)
    np.save(tmp_path / "names2d.npy", np.array([["a.png", "b.png"]]))
    with pytest.raises(
        ClusterTableError, match=r"names2d\.npy: shape \(1, 2\); expected one file name"
    ):
        load_embeddings(tmp_path / "good.npy", tmp_path / "names2d.npy", ids)
    np.save(tmp_path / "text.npy", np.array([["x"] * 3] * 2))
    with pytest.raises(ClusterTableError, match=r"text\.npy: dtype <U1; expected numbers"):
        load_embeddings(tmp_path / "text.npy", tmp_path / "names.npy", ids)


# balrog ---------------------------------------------------------------------------------------
TRUE = {"r": "TRUE_FLUX_R", "i": "TRUE_FLUX_I"}
OBS = {"r": "FLUX_R", "i": "FLUX_I"}
COND = {"psf_fwhm_r": "FWHM_R", "sky_sigma_r": "SKY_R"}


def _catalogue(**changes) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "TRUE_FLUX_R": [1000.0, 100.0, 10.0],
            "TRUE_FLUX_I": [1200.0, 120.0, 12.0],
            "FLUX_R": [990.0, -5.0, -9999.0],
            "FLUX_I": [1210.0, 130.0, -9999.0],
            "DETECTED": [1, 1, 0],
            "FWHM_R": [0.9, 1.0, 1.1],
            "SKY_R": [3.0, 3.1, 3.2],
            "DEEP_ID": [7, 7, 8],
        }
    )
    for column, values in changes.items():
        frame[column] = values
    return frame


def _load(path, **kwargs):
    return load_balrog_catalogue(path, TRUE, OBS, "DETECTED", COND, **kwargs)


def _csv(tmp_path, frame, name="balrog.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_balrog_zero_rows_is_an_error(tmp_path):
    path = _csv(tmp_path, _catalogue().iloc[:0])
    with pytest.raises(
        BalrogCatalogueError, match=r"balrog\.csv: no rows .*expected one row per injection"
    ):
        _load(path)


@pytest.mark.parametrize("sky", [[3.0, -1.0, 3.0], [0.0, 3.0, 3.0]])
def test_balrog_non_positive_sky_sigma_names_the_column(tmp_path, sky):
    path = _csv(tmp_path, _catalogue(SKY_R=sky))
    with pytest.raises(
        BalrogCatalogueError,
        match=r"balrog\.csv: column 'SKY_R' \(condition sky_sigma_r\) has 1 zero or negative .*expected sky σ > 0",
    ):
        _load(path)


def test_balrog_non_positive_psf_names_the_column(tmp_path):
    path = _csv(tmp_path, _catalogue(FWHM_R=[0.9, 0.0, 1.0]))
    with pytest.raises(
        BalrogCatalogueError, match=r"'FWHM_R' \(condition psf_fwhm_r\).*\[1\].*FWHM > 0"
    ):
        _load(path)


def test_balrog_magnitudes_in_flux_columns_are_recognised(tmp_path):
    mags = [22.5, 25.0, 27.5]
    path = _csv(tmp_path, _catalogue(TRUE_FLUX_R=mags))
    with pytest.raises(
        BalrogCatalogueError,
        match=r"balrog\.csv: column 'TRUE_FLUX_R' \(true r flux\) holds only values in \[22\.5, 27\.5\], which look like magnitudes; expected linear fluxes",
    ):
        _load(path)
    path = _csv(tmp_path, _catalogue(FLUX_I=[22.4, 24.9, 99.0]))  # 99: a non-detection sentinel
    with pytest.raises(
        BalrogCatalogueError, match=r"column 'FLUX_I' \(observed i flux\) .* look like magnitudes"
    ):
        _load(path)


@pytest.mark.parametrize(
    "ids",
    [
        ["DES J0001-0002", "DES J0001-0002", "galaxy-b"],  # strings
        [2**62 + 5, 2**62 + 5, 10**15],  # survey-sized integers
        [1.5e20, 1.5e20, 3.0],  # floats
    ],
)
def test_balrog_deep_ids_of_any_type_and_size_are_kept_as_given(tmp_path, ids):
    path = _csv(tmp_path, _catalogue(DEEP_ID=ids))
    frame = _load(path, deep_id_column="DEEP_ID")
    assert frame["deep_id"].tolist() == ids
    dense = np.unique(frame["deep_id"].to_numpy(), return_inverse=True)[1]
    dense = dense.ravel().tolist()
    assert dense[0] == dense[1] != dense[2] and sorted(set(dense)) == [0, 1]


def test_balrog_fits_string_ids_arrive_as_text(tmp_path):
    from astropy.table import Table

    frame = _catalogue(DEEP_ID=["a", "a", "bb"])
    Table.from_pandas(frame).write(tmp_path / "balrog.fits")
    assert _load(tmp_path / "balrog.fits", deep_id_column="DEEP_ID")["deep_id"].tolist() == [
        "a",
        "a",
        "bb",
    ]


def test_balrog_empty_deep_ids_are_an_error(tmp_path):
    path = _csv(tmp_path, _catalogue(DEEP_ID=["a", None, "b"]))
    with pytest.raises(
        BalrogCatalogueError,
        match=r"column 'DEEP_ID' \(deep id\) has 1 empty value\(s\) \(first rows \[1\]\)",
    ):
        _load(path, deep_id_column="DEEP_ID")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("balrog.csv", b"", r"balrog\.csv: empty file \(0 bytes\); expected a CSV catalogue"),
        ("balrog.csv", b"\n", r"balrog\.csv: not a readable CSV catalogue \(EmptyDataError"),
        ("balrog.parquet", b"", r"balrog\.parquet: empty file \(0 bytes\); expected a Parquet"),
        (
            "balrog.parquet",
            b"garbage" * 20,
            r"balrog\.parquet: not a readable Parquet catalogue \(ArrowInvalid",
        ),
        ("balrog.fits", b"garbage" * 20, r"balrog\.fits: not a readable FITS catalogue"),
    ],
)
def test_balrog_unreadable_files_name_the_file(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BalrogCatalogueError, match=message):
        _load(tmp_path / name)


@pytest.mark.parametrize("name", ["balrog.parquet", "balrog.fits"])
def test_balrog_truncated_parquet_and_fits_name_the_file(tmp_path, name):
    from astropy.table import Table

    frame = _catalogue()
    if name.endswith("parquet"):
        frame.to_parquet(tmp_path / name)
    else:
        Table.from_pandas(frame).write(tmp_path / name)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 3])
    with pytest.raises(
        BalrogCatalogueError, match=rf"{re.escape(name)}: not a readable (Parquet|FITS) catalogue"
    ):
        _load(tmp_path / name)


# anomaly --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"",  # 0 bytes
        lambda b: b[:60],  # truncated
        lambda b: b[:40] + bytes([b[40] ^ 0xFF]) + b[41:],  # flipped byte (bad CRC)
        lambda b: b"GIF89a" + b[6:],  # wrong signature
    ],
)
@pytest.mark.parametrize("position", ["first", "later"])
def test_anomaly_corrupt_png_names_the_file(tmp_path, damage, position):
    folder = tmp_path / "sky" / "train" / "0.normal"
    folder.mkdir(parents=True)
    for name in ("a.png", "b.png", "c.png"):
        (folder / name).write_bytes(_png_bytes())
    broken = folder / ("a.png" if position == "first" else "c.png")
    broken.write_bytes(damage(broken.read_bytes()))
    with pytest.raises(
        ImageFolderError, match=rf"{re.escape(str(broken))}: not a readable PNG/JPEG image"
    ):
        load_image_folder(tmp_path / "sky")


def test_anomaly_empty_folders_name_the_folder_and_layout(tmp_path):
    root = tmp_path / "sky"
    (root / "train" / "0.normal").mkdir(parents=True)
    with pytest.raises(
        ImageFolderError,
        match=r"sky/train/0\.normal: no images .*the folder is empty; expected the layout <root>/train/0\.normal/\*\.png",
    ):
        load_image_folder(root)
    (root / "train" / "0.normal" / "notes.txt").write_text("x")
    with pytest.raises(
        ImageFolderError, match=r"0\.normal: no images .*found only \['notes\.txt'\]"
    ):
        load_rating_folder(root)
    plain = tmp_path / "pair"
    (plain / "observed").mkdir(parents=True)
    (plain / "simulated").mkdir()
    with pytest.raises(
        ImageFolderError,
        match=r"pair/observed: no images .*expected the layout <root>/observed/\*\.png and <root>/simulated/\*\.png",
    ):
        load_rating_folder(plain)
    (tmp_path / "bare").mkdir()
    with pytest.raises(
        ImageFolderError, match=r"bare: neither the seed's layout \(train/0\.normal"
    ):
        load_rating_folder(tmp_path / "bare")


# galforge -------------------------------------------------------------------------------------
def _stars(n=200, seed=5):
    galaxy = gf.sample_galaxies(1, np.random.default_rng(seed)).iloc[0]
    return gf.sample_stars(galaxy, n, np.random.default_rng(seed + 1))


@pytest.mark.parametrize(
    ("columns", "scale", "message"),
    [
        (
            slice(0, 3),
            1e3,
            r"column 'x' \(position\) has median \|x\| = .*; expected kpc \(the values look like pc\)",
        ),
        (
            slice(3, 6),
            1e3,
            r"column 'vx' \(velocity\) has median \|vx\| = .*; expected km/s \(the values look like m/s\)",
        ),
        (
            slice(9, 10),
            1e9,
            r"column 'age' \(age\) has max \|age\| = .*; expected Gyr \(the values look like yr or Myr\)",
        ),
        (slice(9, 10), 1e3, r"column 'age' \(age\) .* expected Gyr"),
    ],
)
def test_galforge_wrong_units_are_refused(tmp_path, columns, scale, message):
    stars = _stars()
    stars[:, columns] *= scale
    np.savez(tmp_path / "g.npz", stars=stars, log_mass=9.5)
    with pytest.raises(GalaxyFileError, match=r"g\.npz: " + message):
        load_galaxy(tmp_path / "g.npz")


@pytest.mark.control
def test_galforge_mock_galaxies_pass_the_unit_checks(tmp_path):
    for seed in range(5):
        np.savez(tmp_path / f"g{seed}.npz", stars=_stars(2000, seed), log_mass=9.5)
        assert load_galaxy(tmp_path / f"g{seed}.npz")[0].shape == (2000, 10)


@pytest.mark.parametrize(
    ("log_mass", "message"),
    [
        (np.array([9.5, 10.0]), r"'log_mass' has shape \(2,\); expected one number"),
        (np.array([[9.5]]), r"'log_mass' has shape \(1, 1\); expected one number"),
        (np.array([]), r"'log_mass' has shape \(0,\); expected one number"),
        (np.array("heavy"), r"'log_mass' is .*'heavy'.*; expected a number"),
    ],
)
def test_galforge_log_mass_of_the_wrong_shape(tmp_path, log_mass, message):
    np.savez(tmp_path / "g.npz", stars=_stars(), log_mass=log_mass)
    with pytest.raises(GalaxyFileError, match=r"g\.npz: " + message):
        load_galaxy(tmp_path / "g.npz")


def test_galforge_files_of_the_wrong_kind(tmp_path):
    stars = _stars()
    np.save(tmp_path / "a.npy", stars)
    (tmp_path / "a.npz").write_bytes((tmp_path / "a.npy").read_bytes())
    with pytest.raises(GalaxyFileError, match=r"a\.npz: a single \.npy array named \.npz"):
        load_galaxy(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", stars=stars, log_mass=9.5)
    (tmp_path / "b.npy").write_bytes((tmp_path / "b.npz").read_bytes())
    with pytest.raises(GalaxyFileError, match=r"b\.npy: a \.npz archive named \.npy"):
        load_galaxy(tmp_path / "b.npy", log_mass=9.5)
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(GalaxyFileError, match=r"empty\.npz: empty file \(0 bytes\)"):
        load_galaxy(tmp_path / "empty.npz")
    data = (tmp_path / "b.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(GalaxyFileError, match=r"cut\.npz: not a readable \.npz file \(BadZipFile"):
        load_galaxy(tmp_path / "cut.npz")
    (tmp_path / "flip.npz").write_bytes(data)
    _flip_middle_byte(tmp_path / "flip.npz")
    with pytest.raises(GalaxyFileError, match=r"flip\.npz: cannot read the archive's arrays"):
        load_galaxy(tmp_path / "flip.npz")
    np.savez(tmp_path / "text.npz", stars=np.full((3, 10), "x"), log_mass=9.5)
    with pytest.raises(
        GalaxyFileError, match=r"text\.npz: 'stars' has dtype <U1; expected numbers"
    ):
        load_galaxy(tmp_path / "text.npz")
    np.savez(tmp_path / "none.npz", stars=np.empty((0, 10)), log_mass=9.5)
    with pytest.raises(GalaxyFileError, match=r"none\.npz: 'stars' has no rows"):
        load_galaxy(tmp_path / "none.npz")


def _population(tmp_path, n_stars=(1200, 1100)):
    rng = np.random.default_rng(7)
    table = gf.sample_galaxies(len(n_stars), rng)
    stars = [
        gf.sample_stars(g, n, rng) for (_, g), n in zip(table.iterrows(), n_stars, strict=True)
    ]
    images = np.stack(
        [gf.render_image(s, 16, gf.random_rotation(rng), rng) for s in stars for _ in (0, 1)]
    )
    names = [f"g{i}" for i in range(len(n_stars))]
    data = {
        "galaxies": pd.DataFrame({"name": names, "log_mass": table["log_mass"]}),
        "stars": np.concatenate(stars),
        "star_galaxy": np.repeat(np.arange(len(n_stars)), n_stars),
        "images": images,
        "image_galaxy": np.repeat(np.arange(len(n_stars)), 2),
    }
    return write_population(tmp_path / "pop", data)


def test_galforge_population_refuses_pc_instead_of_dropping_the_galaxy(tmp_path):
    root = _population(tmp_path)
    path = root / "galaxies" / "g1.npz"
    with np.load(path) as data:
        stars, log_mass = data["stars"].copy(), data["log_mass"]
    stars[:, :3] *= 1e3
    np.savez(path, stars=stars, log_mass=log_mass)
    with pytest.raises(GalaxyFileError, match=r"g1\.npz: column 'x' \(position\).*expected kpc"):
        load_population(root, image_size=8)


def test_galforge_population_warns_about_the_galaxies_it_drops(tmp_path):
    root = _population(tmp_path, (1200, 300))
    with pytest.warns(
        UserWarning,
        match=r"galaxies: dropped 1 of 2 galaxies with fewer than 1000 stars after cleaning .*g1\.npz \(\d+ of 300 left; \d+ by radius, 0 by metallicity, 0 by age\)",
    ):
        got = load_population(root, image_size=8)
    assert list(got["galaxies"]["name"]) == ["g0"]


def test_galforge_corrupt_first_image_of_a_galaxy_names_the_file(tmp_path):
    root = _population(tmp_path)
    first = sorted((root / "images" / "g0").iterdir())[0]
    first.write_bytes(b"not a png")
    with pytest.raises(
        ImageFolderError, match=rf"{re.escape(str(first))}: not a readable PNG/JPEG image"
    ):
        load_population(root, image_size=8)


def test_galforge_mass_table_bad_inputs(tmp_path):
    root = _population(tmp_path)
    stars = load_galaxy(root / "galaxies" / "g0.npz")[0]
    np.save(root / "galaxies" / "g9.npy", stars)
    (root / "galaxies.csv").write_bytes(b"")
    with pytest.raises(
        GalaxyFileError,
        match=r"galaxies\.csv: empty file \(0 bytes\); expected a name,log_mass table",
    ):
        load_population(root, image_size=8)
    _write(root / "galaxies.csv", "name,log_mass\ng9,heavy\n")
    with pytest.raises(
        GalaxyFileError, match=r"galaxies\.csv: column 'log_mass' has 1 empty or non-numeric"
    ):
        load_population(root, image_size=8)
    _write(root / "galaxies.csv", "name,log_mass\ng9,9.5\ng9,9.6\n")
    with pytest.raises(GalaxyFileError, match=r"galaxies\.csv: column 'name' repeats 'g9'"):
        load_population(root, image_size=8)


# hernquist ------------------------------------------------------------------------------------
POS = np.random.default_rng(0).normal(size=(100, 3)) * 5 * KPC
VEL = np.random.default_rng(1).normal(size=(100, 3)) * 1e5


def _catalogue_npz(tmp_path, name="cat.npz", **arrays):
    path = tmp_path / name
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({}, r"missing key\(s\) \['pos', 'vel'\]; expected 'pos' and 'vel', found \[\]"),
        (
            {"position": POS, "vel": VEL},
            r"missing key\(s\) \['pos'\]; .*found \['position', 'vel'\]",
        ),
        ({"pos": POS, "vel": VEL.ravel()}, r"'vel' has shape \(300,\); expected \(N, 3\)"),
        ({"pos": POS.T, "vel": VEL}, r"'pos' has shape \(3, 100\); expected \(N, 3\)"),
        (
            {"pos": POS, "vel": np.where(np.arange(100)[:, None] == 3, np.inf, VEL)},
            r"'vel' has 1 rows with NaN/inf \(first at row 3\)",
        ),
        (
            {"pos": (POS / 1e3).astype(np.int64), "vel": VEL},
            r"'pos' has dtype int64; expected float",
        ),
        ({"pos": POS[:0], "vel": VEL[:0]}, r"'pos' has no rows"),
        ({"pos": POS, "vel": VEL / 1e3}, r"median \|vel\| is .*expected SI units \(m/s\)"),
        ({"pos": POS / KPC * 1e3, "vel": VEL}, r"median \|pos\| is .*expected SI units \(m\)"),
    ],
)
def test_hernquist_bad_keys_shapes_and_values_name_the_key(tmp_path, arrays, message):
    path = _catalogue_npz(tmp_path, **arrays)
    with pytest.raises(CatalogueFormatError, match=message) as err:
        load_phase_space_npz(path)
    assert str(path) in str(err.value)


def test_hernquist_files_of_the_wrong_kind(tmp_path):
    np.save(tmp_path / "cat.npy", POS)
    (tmp_path / "cat.npz").write_bytes((tmp_path / "cat.npy").read_bytes())
    with pytest.raises(
        CatalogueFormatError,
        match=r"cat\.npz: a single \.npy array of shape \(100, 3\), not a \.npz archive",
    ):
        load_phase_space_npz(tmp_path / "cat.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(CatalogueFormatError, match=r"empty\.npz: empty file \(0 bytes\)"):
        load_phase_space_npz(tmp_path / "empty.npz")
    good = _catalogue_npz(tmp_path, "good.npz", pos=POS, vel=VEL).read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(
        CatalogueFormatError, match=r"cut\.npz: not a readable \.npz archive \(BadZipFile"
    ):
        load_phase_space_npz(tmp_path / "cut.npz")
    (tmp_path / "flip.npz").write_bytes(good)
    _flip_middle_byte(tmp_path / "flip.npz")
    with pytest.raises(CatalogueFormatError, match=r"flip\.npz: cannot read the archive's arrays"):
        load_phase_space_npz(tmp_path / "flip.npz")
    path = _catalogue_npz(tmp_path, "objects.npz", pos=np.array([None, 1], object), vel=VEL)
    with pytest.raises(
        CatalogueFormatError, match=r"objects\.npz: cannot read the archive's arrays .*pickled"
    ):
        load_phase_space_npz(path)
