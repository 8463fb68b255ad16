"""The run report: results.json, results.md, confusion-matrix PNGs and training curves.

Plots draw on `matplotlib.figure.Figure` with the Agg canvas directly, so writing a report never
changes the pyplot backend of a notebook.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mer_jax.train import distributed

REQUIRED_KEYS = ("uf1", "uar", "accuracy", "per_class", "per_dataset", "per_fold", "confusion_matrix", "protocol",
                 "selection", "config")
HELD_OUT_CURVES = {"test_uf1": "test UF1 (pooled)", "test_uar": "test UAR (pooled)", "val_uf1": "val UF1"}
VAL_LOSS = "val_loss"   # per eval epoch, drawn next to the training loss
SELECTIONS = {
    "last": "model after the last epoch",
    "val": "epoch selected on a validation split of the training subjects",
    "test_selected": "epoch selected on the held-out test subject",
    "released_weights": "released per-fold weights evaluated on their held-out subjects; no training here",
}
TEST_SELECTED_WARNING = (
    "> **WARNING: test_selected.** The epoch of every fold was selected on its held-out test data. "
    "This leaks test information into the model choice, so these numbers overestimate performance. "
    "Use them only to reproduce published numbers obtained the same way; never report them as LOSO results.")


def write_report(workdir, results: dict, history: dict | None = None) -> dict[str, Path]:
    """Write the report of one run to `workdir`; returns {file name: path} of every file written.

    `results` holds the output of `metrics.summarize` plus `protocol` (dict), `selection` (one of
    SELECTIONS) and `config` (plain dict); `model` and `corpus` are optional. `history` (optional) holds
    `epoch`, `train_loss`, `train_accuracy` and, aligned with `eval_epoch`, any of `test_uf1`, `test_uar`,
    `val_uf1`, `val_loss`. Only process 0 of a multi-process job writes; the others validate and return {}.
    """
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        raise ValueError(f"results lacks required keys {missing}")
    if results["selection"] not in SELECTIONS:
        raise ValueError(f"results['selection'] must be one of {list(SELECTIONS)}, got {results['selection']!r}")
    if history is not None:
        _check_history(history)
    if not distributed.is_main_process():
        return {}
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    written = {}

    def save(name: str, text: str | None = None, figure: Figure | None = None) -> None:
        path = workdir / name
        if figure is None:
            path.write_text(text)
        else:
            FigureCanvasAgg(figure)
            figure.savefig(path, dpi=120)
        written[name] = path

    save("results.json", json.dumps(results, indent=2) + "\n")
    save("results.md", markdown(results))
    names = list(results["per_class"])
    save("confusion_matrix.png", figure=confusion_figure(
        results, names, f"{_title(results)}, pooled, selection: {results['selection']}"))
    if len(results["per_dataset"]) > 1:
        for dataset, scores in results["per_dataset"].items():
            safe = re.sub(r"[^\w.-]", "_", dataset)
            save(f"confusion_matrix_{safe}.png", figure=confusion_figure(
                scores, names, f"{_title(results)}, {dataset}, selection: {results['selection']}"))
    if history is not None:
        save("curves.png", figure=curves_figure(history, f"{_title(results)} ({results['selection']})"))
    return written


def _title(results: dict) -> str:
    return " on ".join(str(results[k]) for k in ("model", "corpus") if k in results) or "MER run"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def _matrix_table(matrix: list[list[int]], names: list[str]) -> list[str]:
    return _table(["truth \\ prediction", *names], [[name, *row] for name, row in zip(names, matrix)])


def markdown(results: dict) -> str:
    """results.md: headline pooled metrics, per-fold mean ± std, epochs per fold (for a selection other
    than last), per class, per dataset, confusion matrices."""
    sel = results["selection"]
    tag = f"selection: {sel}"
    names = list(results["per_class"])
    lines = [f"# {_title(results)}", ""]
    if sel == "test_selected":
        lines += [TEST_SELECTED_WARNING, ""]
    lines += [f"- **selection**: {sel} ({SELECTIONS[sel]})"]
    if "inputs" in results:
        lines += [f"- **inputs**: {', '.join(results['inputs'])}"]
    if "started_from" in results:
        lines += [f"- **started from**: the model of fold {results['started_from']['fold']} of the run in "
                  f"`{results['started_from']['run']}`"]
    if "released_weights" in results:
        weights = results["released_weights"]
        lines += [f"- **released weights**: {len(weights['files'])} files from `{weights['dir']}` "
                  "(one per held-out subject; listed in results.json)"]
    lines += [f"- **protocol.{key}**: {value}" for key, value in results["protocol"].items()]
    lines += ["", f"## Pooled held-out results ({tag})", "",
              "UF1 and UAR as in MEGC2019: per-class TP/FP/FN counts pooled over the held-out predictions of all "
              "folds, then averaged over classes.", ""]
    lines += _table(["metric", "value"], [
        ["UF1", results["uf1"]], ["UAR", results["uar"]], ["accuracy", results["accuracy"]],
        ["AUC (macro, one-vs-rest)", results.get("auc")], ["macro-F1 (all classes)", results.get("macro_f1")],
        ["n", results.get("n")]])
    mean, std = results["per_fold"]["mean"], results["per_fold"]["std"]
    lines += ["", f"## Per-fold mean ± std over {len(results['per_fold']['folds'])} folds ({tag})", "",
              "Secondary numbers: each fold's UF1/UAR averages only the classes that fold contains, so small folds "
              "are noisy. The pooled numbers above are the headline.", ""]
    lines += _table(["metric", "mean ± std"], [[label, f"{mean[m]:.4f} ± {std[m]:.4f}"] for m, label in
                                               (("uf1", "UF1"), ("uar", "UAR"), ("accuracy", "accuracy"))])
    if "epochs_trained" in results and sel != "last":
        lines += ["", "## Epochs per fold", "",
                  "Epochs each fold trained for (fewer than train.num_epochs: stopped early on its validation "
                  "subjects) and the epoch of the model it reports.", ""]
        lines += _table(["fold", "epochs trained", "reported epoch"],
                        [[fold, trained, results["selected_epoch"][fold]]
                         for fold, trained in results["epochs_trained"].items()])
    lines += ["", f"## Per class ({tag})", ""]
    lines += _table(["class", "precision", "recall", "F1", "AUC", "support"],
                    [[name, c["precision"], c["recall"], c["f1"], c["auc"], c["support"]]
                     for name, c in results["per_class"].items()])
    lines += ["", f"## Per dataset ({tag})", ""]
    lines += _table(["dataset", "n", "UF1", "UAR", "accuracy"],
                    [[d, s["n"], s["uf1"], s["uar"], s["accuracy"]] for d, s in results["per_dataset"].items()])
    lines += ["", f"## Confusion matrix, pooled ({tag}; rows = truth)", ""]
    lines += _matrix_table(results["confusion_matrix"], names)
    if len(results["per_dataset"]) > 1:
        for dataset, scores in results["per_dataset"].items():
            lines += ["", f"## Confusion matrix, {dataset} ({tag}; rows = truth)", ""]
            lines += _matrix_table(scores["confusion_matrix"], names)
    return "\n".join(lines) + "\n"


def confusion_figure(scores: dict, names: list[str], title: str) -> Figure:
    """`scores["confusion_matrix"]` as counts in each cell, coloured by the row-normalised fraction."""
    counts = np.asarray(scores["confusion_matrix"])
    support = counts.sum(1, keepdims=True)
    fraction = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
    size = 2.5 + 0.9 * len(names)
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, f"{n}\n{fraction[i, j]:.0%}" if support[i, 0] else str(n), ha="center", va="center",
                color="white" if fraction[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), [f"{name} ({m})" for name, m in zip(names, support[:, 0])])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (support)")
    ax.set_title(f"{title}\nUF1 {scores['uf1']:.4f}, UAR {scores['uar']:.4f}, n = {counts.sum()}", fontsize=10)
    return fig


def _check_history(history: dict) -> None:
    """Every curve has one value per entry of its x axis (`epoch` or `eval_epoch`)."""
    held_out = tuple(k for k in (*HELD_OUT_CURVES, VAL_LOSS) if history.get(k) is not None)
    for axis, keys in (("epoch", ("train_loss", "train_accuracy")), ("eval_epoch", held_out)):
        for key in keys:
            if axis not in history or key not in history:
                raise ValueError(f"history lacks {key!r} or its x axis {axis!r}")
            if len(history[key]) != len(history[axis]):
                raise ValueError(f"history[{key!r}] has {len(history[key])} values but history[{axis!r}] "
                                 f"has {len(history[axis])}")


def curves_figure(history: dict, title: str) -> Figure:
    """Training loss and accuracy per epoch, and held-out scores per evaluation epoch."""
    held_out = {k: label for k, label in HELD_OUT_CURVES.items() if history.get(k) is not None}
    panels = 3 if held_out else 2
    fig = Figure(figsize=(4.5 * panels, 3.6), layout="constrained")
    axes = fig.subplots(1, panels)
    for ax, key in zip(axes, ("train_loss", "train_accuracy")):
        ax.plot(history["epoch"], history[key], marker=".", label="train")
        if key == "train_loss" and history.get(VAL_LOSS) is not None:
            ax.plot(history["eval_epoch"], history[VAL_LOSS], marker="o", label="validation")
            ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key.replace("_", " "), fontsize=10)
        ax.grid(alpha=0.3)
    if held_out:
        ax = axes[2]
        for key, label in held_out.items():
            ax.plot(history["eval_epoch"], history[key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1)
        ax.set_title("held-out scores", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return fig
