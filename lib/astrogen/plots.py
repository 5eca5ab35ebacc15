"""One figure style for the repository, and saving figures under ``figures/<study>/``."""

from __future__ import annotations

import matplotlib

matplotlib.use(matplotlib.get_backend() if "inline" in matplotlib.get_backend() else "Agg")

import matplotlib.pyplot as plt
import seaborn as sns

from astrogen import paths, store

PALETTE = sns.color_palette("colorblind")


def use_style() -> None:
    """Apply the shared style: white grid, colour-blind palette, readable sizes."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook")
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "axes.titlesize": "medium",
            "legend.frameon": False,
        }
    )


def save_figure(fig: plt.Figure, study: str, name: str) -> str:
    """Save ``fig`` as ``figures/<study>/<name>.png`` atomically; return the path.

    Every axis that shows data must carry a label: an unlabelled axis is an error here, so a
    figure without units never reaches the repository.
    """
    for ax in fig.axes:
        if not (ax.get_visible() and ax.axison):
            continue
        if hasattr(ax, "_colorbar"):  # a colour bar needs one label, on its long axis
            labelled = bool(ax.get_xlabel() or ax.get_ylabel())
        else:
            labelled = not ax.has_data() or bool(ax.get_xlabel() and ax.get_ylabel())
        if not labelled:
            raise ValueError(f"figure {study}/{name}: an axis or colour bar is missing a label")
    path = paths.figure_dir(study) / f"{name}.png"
    store.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    return str(path.relative_to(paths.ROOT))
