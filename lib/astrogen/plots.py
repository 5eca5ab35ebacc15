"""One figure style for the repository, and saving figures under ``figures/<study>/``."""

from __future__ import annotations

import matplotlib

matplotlib.use(matplotlib.get_backend() if "inline" in matplotlib.get_backend() else "Agg")

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from astrogen import paths, store

PALETTE = sns.color_palette("colorblind")


def use_style() -> None:
    """Apply the shared style: white grid, colour-blind palette, readable sizes, constrained layout."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook")
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            # constrained layout keeps labels, colour bars and legends from colliding
            "figure.constrained_layout.use": True,
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
    grid_x, grid_y = _grid_labels(fig)
    for ax in fig.axes:
        if not (ax.get_visible() and ax.axison):
            continue
        if hasattr(ax, "_colorbar"):  # a colour bar needs one label, on its long axis
            labelled = bool(ax.get_xlabel() or ax.get_ylabel())
        else:
            spec = ax.get_subplotspec()
            # In a grid (corner plots, panel matrices) the outer row/column carries the labels.
            has_x = bool(ax.get_xlabel()) or (spec is not None and grid_x.get(_cols(spec), False))
            has_y = bool(ax.get_ylabel()) or (spec is not None and grid_y.get(_rows(spec), False))
            labelled = not ax.has_data() or (has_x and has_y)
        if not labelled:
            raise ValueError(f"figure {study}/{name}: an axis or colour bar is missing a label")
    path = paths.figure_dir(study) / f"{name}.png"
    store.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    return str(path.relative_to(paths.ROOT))


def _rows(spec) -> tuple[int, int]:
    return (spec.rowspan.start, spec.rowspan.stop)


def _cols(spec) -> tuple[int, int]:
    return (spec.colspan.start, spec.colspan.stop)


def _grid_labels(fig: plt.Figure) -> tuple[dict, dict]:
    """Which grid columns have an x label and which grid rows a y label, on any of their axes."""
    cols: dict[tuple[int, int], bool] = {}
    rows: dict[tuple[int, int], bool] = {}
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None or hasattr(ax, "_colorbar"):
            continue
        cols[_cols(spec)] = cols.get(_cols(spec), False) or bool(ax.get_xlabel())
        rows[_rows(spec)] = rows.get(_rows(spec), False) or bool(ax.get_ylabel())
    return cols, rows


def corner(
    samples: dict[str, np.ndarray],
    labels: list[str],
    *,
    truth: np.ndarray | None = None,
    points: dict[str, np.ndarray] | None = None,
    bins: int = 40,
    ranges: list[tuple[float, float]] | None = None,
) -> plt.Figure:
    """Staircase plot: 1-D histograms on the diagonal, 2-D contours of each sample set below.

    Args:
        samples: name → draws (N, D), one colour each.
        labels: axis label (with units) per dimension.
        truth: optional (D,) true values, drawn as black lines / a star.
        points: optional name → (D,) point estimates (e.g. a MAP), drawn as markers.
        ranges: optional (low, high) per dimension; default the pooled 0.5–99.5 % range.
    """
    d = len(labels)
    pooled = np.concatenate(list(samples.values()))
    if ranges is None:
        ranges = [tuple(np.percentile(pooled[:, k], [0.5, 99.5])) for k in range(d)]
    # a corner plot packs its panels itself (tight gaps, shared labels on the outer panels)
    fig, axes = plt.subplots(d, d, figsize=(1.8 * d, 1.8 * d), squeeze=False, layout="none")
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            for k, (name, s) in enumerate(samples.items()):
                colour = PALETTE[k % len(PALETTE)]
                if i == j:
                    ax.hist(s[:, i], bins, range=ranges[i], density=True, histtype="step",
                            color=colour, label=name)  # fmt: skip
                else:
                    h, xe, ye = np.histogram2d(
                        s[:, j], s[:, i], bins=bins // 2, range=[ranges[j], ranges[i]]
                    )
                    levels = _mass_levels(h, (0.68, 0.95))
                    ax.contour(0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), h.T,
                               levels=levels, colors=[colour], linewidths=1)  # fmt: skip
            if truth is not None:
                ax.axvline(truth[j], color="k", lw=0.8)
                if i != j:
                    ax.axhline(truth[i], color="k", lw=0.8)
            for k, (name, p) in enumerate((points or {}).items()):
                if i != j:
                    ax.plot(p[j], p[i], "X", color=PALETTE[(k + 3) % len(PALETTE)], ms=6)
                else:
                    ax.axvline(p[j], color=PALETTE[(k + 3) % len(PALETTE)], ls="--", lw=1,
                               label=name)  # fmt: skip
            ax.set_xlim(ranges[j])
            if i != j:
                ax.set_ylim(ranges[i])
            if i == d - 1:
                ax.set_xlabel(labels[j])
            else:
                ax.set_xticklabels([])
            if j == 0:
                ax.set_ylabel(labels[i] if i > 0 else "density")
            elif i != j:
                ax.set_yticklabels([])
            if i == j:
                ax.set_yticks([])
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.05, 1.0))
    fig.subplots_adjust(wspace=0.08, hspace=0.08)
    return fig


def _mass_levels(hist: np.ndarray, masses: tuple[float, ...]) -> list[float]:
    """Histogram heights enclosing the given probability masses, increasing, distinct."""
    flat = np.sort(hist.ravel())[::-1]
    cum = np.cumsum(flat) / max(flat.sum(), 1e-300)
    levels = sorted({float(flat[min(np.searchsorted(cum, m), len(flat) - 1)]) for m in masses})
    return levels if len(levels) > 1 or levels[0] > 0 else [0.5 * flat.max()]
