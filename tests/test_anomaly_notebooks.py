"""Study 4 on a folder in the seed's layout: the three notebooks run end to end (smoke sizes)."""

import json

import numpy as np

from astrogen import paths
from astrogen.io.anomaly import write_image_folder
from astrogen.sims.anomaly import render_sky, render_suite, to_rgb


def test_notebooks_train_and_rate_from_a_seed_layout_folder(tmp_path, run_smoke_notebooks):
    sky, _ = render_sky(160, np.random.default_rng(0))
    test, _ = render_sky(40, np.random.default_rng(1))
    compact, _ = render_suite("compact", 1.0, 30, np.random.default_rng(2))
    folder = write_image_folder(tmp_path / "sky", {
        "train": to_rgb(sky), "test_normal": to_rgb(test), "test_abnormal": to_rgb(compact),
    })  # fmt: skip
    notebooks = ["41_anomaly_sky_and_suites", "42_anomaly_training", "43_anomaly_rating"]
    run_smoke_notebooks(notebooks, data_source=str(folder))
    metrics = json.loads((paths.metrics_dir("smoke") / "43_anomaly_rating.json").read_text())
    assert 0 <= metrics["folder_auroc"] <= 1 and 0 <= metrics["folder_mean_score"] <= 1
