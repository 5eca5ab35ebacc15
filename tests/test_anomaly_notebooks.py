"""Study 4 on real-format folders: the notebooks run end to end (smoke sizes)."""

import json

import numpy as np

from astrogen import paths
from astrogen.io.anomaly import save_images, write_image_folder
from astrogen.sims.anomaly import render_sky, render_suite, to_rgb


def _metrics(notebook: str) -> dict:
    return json.loads((paths.metrics_dir("smoke") / f"{notebook}.json").read_text())


def test_notebooks_train_and_rate_from_a_seed_layout_folder(tmp_path, run_smoke_notebooks):
    sky, _ = render_sky(160, np.random.default_rng(0))
    test, _ = render_sky(40, np.random.default_rng(1))
    compact, _ = render_suite("compact", 1.0, 30, np.random.default_rng(2))
    folder = write_image_folder(tmp_path / "sky", {
        "train": to_rgb(sky), "test_normal": to_rgb(test), "test_abnormal": to_rgb(compact),
    })  # fmt: skip
    notebooks = ["41_anomaly_sky_and_suites", "42_anomaly_training", "43_anomaly_rating"]
    run_smoke_notebooks(notebooks, overrides={"data.source": str(folder)})
    metrics = _metrics("43_anomaly_rating_folder")
    assert 0 <= metrics["folder_auroc"] <= 1 and 0 <= metrics["folder_mean_score"] <= 1


def test_scores_notebook_rates_two_plain_folders(tmp_path, run_smoke_notebooks):
    root = tmp_path / "pair"
    save_images(root / "observed", to_rgb(render_sky(200, np.random.default_rng(3))[0]), "obs")
    compact, _ = render_suite("compact", 1.0, 40, np.random.default_rng(4))
    save_images(root / "simulated", to_rgb(compact), "sim")
    run_smoke_notebooks(["45_anomaly_scores"], overrides={"data.source": str(root)})
    metrics = _metrics("45_anomaly_scores_folder")
    assert 0 <= metrics["folder_rating_p"] <= 1 and 0 <= metrics["folder_default_auroc"] <= 1
    assert metrics["score_batch_max_abs_diff_p_combined"] == 0
