"""Study 5 on a folder of real-format galaxies: notebooks 52–54 run end to end (smoke sizes)."""

import json

import numpy as np
import pandas as pd

from astrogen import paths
from astrogen.io.galforge import write_population
from astrogen.sims import galforge as sim


def test_notebooks_train_and_evaluate_from_a_population_folder(tmp_path, run_smoke_notebooks):
    rng = np.random.default_rng(0)
    table = sim.sample_galaxies(12, rng)
    stars = [sim.sample_stars(galaxy, 1_200, rng) for _, galaxy in table.iterrows()]
    views = [sim.render_image(s, 32, sim.random_rotation(rng), rng) for s in stars for _ in (0, 1)]
    folder = write_population(tmp_path / "nihao", {
        "galaxies": pd.DataFrame({"name": [f"g{k:02d}" for k in range(12)], "log_mass": table["log_mass"]}),
        "stars": np.concatenate(stars), "star_galaxy": np.repeat(np.arange(12), 1_200),
        "images": np.stack(views), "image_galaxy": np.repeat(np.arange(12), 2),
    })  # fmt: skip
    notebooks = ["52_galforge_autoencoder", "53_galforge_flows", "54_galforge_evaluation"]
    run_smoke_notebooks(notebooks, overrides={"data.source": str(folder)})
    # a folder's metrics are recorded apart from the simulator's, under <notebook>_folder
    metrics = {
        name: json.loads((paths.metrics_dir("smoke") / f"{name}_folder.json").read_text())
        for name in ("52_galforge_autoencoder", "54_galforge_evaluation")
    }
    # no hidden truth and no exact density for real galaxies: likelihood and sample metrics only
    assert not any(k.startswith("probe_r2") for k in metrics["52_galforge_autoencoder"])
    evaluation = metrics["54_galforge_evaluation"]
    assert not any(k.startswith("forward_kl") for k in evaluation)
    assert np.isfinite(evaluation["nll_best"]) and 0 <= evaluation["c2st_auc_best"] <= 1
    assert evaluation["invalid_fraction_best"] <= 1e-3
