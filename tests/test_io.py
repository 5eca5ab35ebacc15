"""The seed-format catalogue loader refuses bad files with a precise message."""

import numpy as np
import pytest

from astrogen.constants import KPC
from astrogen.io.hernquist import CatalogueFormatError, load_phase_space_npz

POS = np.random.default_rng(0).normal(size=(100, 3)) * 5 * KPC
VEL = np.random.default_rng(1).normal(size=(100, 3)) * 1e5


def _write(tmp_path, **arrays):
    path = tmp_path / "cat.npz"
    np.savez(path, **arrays)
    return path


def test_valid_catalogue_loads(tmp_path):
    pos, vel = load_phase_space_npz(_write(tmp_path, pos=POS, vel=VEL))
    assert pos.shape == vel.shape == (100, 3)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"pos": POS}, r"missing key\(s\) \['vel'\]"),
        ({"pos": POS[:, :2], "vel": VEL}, r"'pos' has shape \(100, 2\); expected \(N, 3\)"),
        (
            {"pos": np.where(np.arange(100)[:, None] == 7, np.nan, POS), "vel": VEL},
            "'pos' has 1 rows with NaN/inf \\(first at row 7\\)",
        ),
        ({"pos": POS / KPC, "vel": VEL}, r"expected SI units \(m\)"),
        ({"pos": POS, "vel": VEL[:50]}, "'pos' has 100 rows but 'vel' has 50"),
    ],
)
def test_bad_catalogue_is_refused_with_a_clear_message(tmp_path, arrays, message):
    path = _write(tmp_path, **arrays)
    with pytest.raises(CatalogueFormatError, match=message) as err:
        load_phase_space_npz(path)
    assert str(path) in str(err.value)
