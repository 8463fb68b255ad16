"""Figures of a loaded run (mer_jax.analysis.Run) for a notebook: confusion matrices, per-class recall,
per-subject accuracy, every fold's training curves, and pictures of the inputs (flow, strain, magnified apex).

Each function returns a `matplotlib.figure.Figure` (a notebook shows it inline when it is the cell's value)
and, given `path`, also writes it as a PNG. Figures are drawn on the Agg canvas directly, as in
evaluate/report.py, whose confusion-matrix figure they reuse, so the pyplot backend is never changed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mer_jax.evaluate import report


def _finish(fig: Figure, path) -> Figure:
    if path is not None:
        FigureCanvasAgg(fig)
        fig.savefig(Path(path), dpi=120)
    return fig


def _results(run) -> dict:
    if run.results is None:
        raise ValueError(f"the run in {run.workdir} has no results.json yet (it has not finished)")
    return run.results


def _predictions(run):
    if run.predictions is None:
        raise ValueError(f"the run in {run.workdir} has no predictions.csv yet (it has not finished)")
    return run.predictions


def confusion_matrix(run, dataset: str | None = None, path=None) -> Figure:
    """Pooled confusion matrix of the held-out predictions, or that of one `dataset` of a composite corpus."""
    results = _results(run)
    if dataset is None:
        scores, where = results, "pooled"
    elif dataset in results["per_dataset"]:
        scores, where = results["per_dataset"][dataset], dataset
    else:
        raise ValueError(f"dataset {dataset!r} is not in the run's results; its datasets: {list(results['per_dataset'])}")
    title = f"{results.get('model', 'run')} on {results.get('corpus', '?')}, {where}, selection: {results['selection']}"
    return _finish(report.confusion_figure(scores, list(results["per_class"]), title), path)


def per_class_recall(run, path=None) -> Figure:
    """Recall of every class (pooled held-out predictions), with its support; UAR is their mean."""
    results = _results(run)
    names = list(results["per_class"])
    recall = [results["per_class"][c]["recall"] for c in names]
    fig = Figure(figsize=(1.2 + 0.9 * len(names), 3.6), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(names, recall, color="tab:blue")
    for bar, c in zip(bars, names):
        ax.annotate(f"n={results['per_class'][c]['support']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.axhline(results["uar"], color="black", linestyle="--", linewidth=1, label=f"UAR {results['uar']:.3f}")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("recall")
    ax.legend(fontsize=8)
    ax.set_title("per-class recall (pooled held-out)", fontsize=10)
    return _finish(fig, path)


def per_subject_accuracy(run, path=None) -> Figure:
    """Held-out accuracy of every subject (the fold that left it out), coloured by dataset, with its n."""
    table = _predictions(run)
    by_subject = table.groupby("subject").agg(accuracy=("correct", "mean"), n=("correct", "size"),
                                              dataset=("dataset", "first")).sort_values(["dataset", "accuracy"])
    datasets = list(dict.fromkeys(by_subject["dataset"]))
    colours = {d: f"C{i % 10}" for i, d in enumerate(datasets)}
    fig = Figure(figsize=(max(4.0, 0.35 * len(by_subject) + 1.5), 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(range(len(by_subject)), by_subject["accuracy"], color=[colours[d] for d in by_subject["dataset"]])
    ax.set_xticks(range(len(by_subject)), [f"{s} ({n})" for s, n in zip(by_subject.index, by_subject["n"])],
                  rotation=90, fontsize=7)
    ax.axhline(table["correct"].mean(), color="black", linestyle="--", linewidth=1,
               label=f"pooled accuracy {table['correct'].mean():.3f}")
    for d in datasets:
        ax.bar([], [], color=colours[d], label=d)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    ax.set_title("held-out accuracy per subject (n samples)", fontsize=10)
    return _finish(fig, path)


def fold_curves(run, path=None) -> Figure:
    """Training loss and accuracy of every fold per epoch (thin lines) and their mean (thick); NaN where a
    fold had stopped early."""
    h = run.history
    if not h["train_loss"]:
        raise ValueError(f"the run in {run.workdir} holds no checkpoint with training curves")
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    for ax, key in zip(fig.subplots(1, 2), ("train_loss", "train_accuracy")):
        curves = np.array(list(h[key].values()), dtype=float)
        for curve in curves:
            ax.plot(h["epoch"], curve, linewidth=0.7, alpha=0.5)
        ax.plot(h["epoch"], np.nanmean(curves, 0), color="black", linewidth=2, label=f"mean of {len(curves)} folds")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key.replace("_", " "), fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _finish(fig, path)


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Flow [H, W, 2] (u, v) as RGB in [0, 1] by the usual HSV coding: hue = direction, value = magnitude
    relative to `max_magnitude` (default: the largest in the map), full saturation."""
    u, v = flow[..., 0], flow[..., 1]
    magnitude = np.hypot(u, v)
    scale = max_magnitude or float(magnitude.max()) or 1.0
    hue = (np.arctan2(v, u) / (2 * np.pi)) % 1.0
    value = np.clip(magnitude / scale, 0, 1)
    return hsv_to_rgb(np.stack([hue, np.ones_like(hue), value], -1)).astype(np.float32)


def flow_and_strain(flow: np.ndarray, strain: np.ndarray | None = None, title: str = "", path=None) -> Figure:
    """One sample's optical flow (HSV coding, `flow_to_rgb`; [H, W, 2], or [H, W, 3] with the strain as its
    third channel, as keyframe_flow stores it) and its optical strain magnitude as a heat map."""
    flow = np.asarray(flow, np.float32)
    if strain is None and flow.shape[-1] == 3:
        strain = flow[..., 2]
    if flow.ndim != 3 or flow.shape[-1] < 2:
        raise ValueError(f"flow must be [H, W, 2] or [H, W, 3], got {flow.shape}")
    panels = 2 if strain is None else 3
    fig = Figure(figsize=(3.2 * panels, 3.4), layout="constrained")
    axes = fig.subplots(1, panels)
    axes[0].imshow(flow_to_rgb(flow[..., :2]))
    axes[0].set_title(f"flow (max |f| {np.hypot(flow[..., 0], flow[..., 1]).max():.2f} px)", fontsize=9)
    wheel = np.stack(np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64)), -1)
    wheel[np.hypot(wheel[..., 0], wheel[..., 1]) > 1] = 0
    axes[1].imshow(flow_to_rgb(wheel, 1.0))
    axes[1].set_title("direction key (hue)", fontsize=9)
    if strain is not None:
        image = axes[2].imshow(np.asarray(strain).squeeze(), cmap="inferno")
        fig.colorbar(image, ax=axes[2], shrink=0.8)
        axes[2].set_title("optical strain", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def magnified_apex(onset: np.ndarray, apex: np.ndarray, magnified: np.ndarray, alpha: float | None = None,
                   title: str = "", path=None) -> Figure:
    """Onset, apex and magnified apex side by side, with |magnified - apex| (what magnification added).
    Images [H, W, C] in [0, 1] (float) or uint8."""
    as_float = lambda x: np.asarray(x, np.float32) / (255.0 if np.asarray(x).dtype == np.uint8 else 1.0)
    onset, apex, magnified = (np.clip(as_float(x), 0, 1) for x in (onset, apex, magnified))
    added = np.abs(magnified - apex).mean(-1)
    fig = Figure(figsize=(12.8, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    label = "magnified apex" + ("" if alpha is None else f" (alpha {alpha:g})")
    for ax, image, name in zip(axes, (onset, apex, magnified), ("onset", "apex", label)):
        ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
    heat = axes[3].imshow(added, cmap="magma")
    fig.colorbar(heat, ax=axes[3], shrink=0.8)
    axes[3].set_title("|magnified - apex|", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def save_all(run, directory) -> dict[str, Figure]:
    """Every run-level figure (pooled and per-dataset confusion matrices, per-class recall, per-subject
    accuracy, fold curves) written as PNGs to `directory`; returns {file name: figure}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    figures = {"confusion_matrix.png": confusion_matrix(run, path=directory / "confusion_matrix.png")}
    datasets = list(_results(run)["per_dataset"])
    if len(datasets) > 1:
        for i, d in enumerate(datasets):
            name = f"confusion_matrix_{i}_{d.replace('/', '_')}.png"
            figures[name] = confusion_matrix(run, d, path=directory / name)
    for name, draw in (("per_class_recall.png", per_class_recall), ("per_subject_accuracy.png", per_subject_accuracy),
                       ("fold_curves.png", fold_curves)):
        figures[name] = draw(run, path=directory / name)
    return figures
