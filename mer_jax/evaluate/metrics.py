"""Metrics of pooled held-out predictions (pure numpy).

The headline numbers are UF1 and UAR as MEGC2019 defines them: per-class counts (TP, FP, FN, support) are
pooled over the held-out predictions of every fold, and only then turned into per-class scores and
averaged. Per-fold means are a secondary number (`summarize(...)["per_fold"]`).
"""
from __future__ import annotations

import numpy as np


def _class_ids(name: str, values, num_classes: int) -> np.ndarray:
    """`values` as a 1-D integer array in [0, num_classes), or a ValueError naming the field."""
    values = np.asarray(values)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {values.shape}")
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {values.dtype}")
    bad = (values < 0) | (values >= num_classes)
    if bad.any():
        raise ValueError(f"{name} must lie in [0, {num_classes}); found {values[bad][0]} "
                         f"at index {int(np.flatnonzero(bad)[0])}")
    return values


def _pair(labels, preds, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    labels = _class_ids("labels", labels, num_classes)
    preds = _class_ids("preds", preds, num_classes)
    if labels.shape != preds.shape:
        raise ValueError(f"labels and preds differ in length: {labels.shape[0]} vs {preds.shape[0]}")
    return labels, preds


def confusion_matrix(labels, preds, num_classes: int) -> np.ndarray:
    """Counts [K, K]; rows are the true class, columns the predicted class."""
    labels, preds = _pair(labels, preds, num_classes)
    return np.bincount(labels * num_classes + preds, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def precision_recall_f1_support(labels, preds, num_classes: int):
    """Per-class (precision, recall, f1, support) arrays of length K.

    A score whose denominator is zero is NaN (undefined): precision of a class never predicted, recall
    of a class with no support, F1 = 2TP / (2TP + FP + FN) of a class absent from truth and predictions.
    This equals sklearn `precision_recall_fscore_support(..., zero_division=np.nan)`.
    """
    cm = confusion_matrix(labels, preds, num_classes)
    tp = np.diag(cm).astype(float)
    predicted, support = cm.sum(0), cm.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(predicted + support > 0, 2 * tp / (predicted + support), np.nan)
    return precision, recall, f1, support


def uf1(labels, preds, num_classes: int) -> float:
    """Unweighted F1 (MEGC2019): mean over classes of F1_c = 2TP_c / (2TP_c + FP_c + FN_c).

    The mean runs over the classes that occur in the truth or the predictions; a class absent from both
    has no defined F1 and is left out (it is not counted as 0). This equals sklearn
    `f1_score(labels, preds, average="macro")` with default `labels`. See `macro_f1` for the mean over
    all K classes.
    """
    return float(np.nanmean(precision_recall_f1_support(labels, preds, num_classes)[2]))


def uar(labels, preds, num_classes: int) -> float:
    """Unweighted average recall (MEGC2019): mean over classes of TP_c / N_c.

    The mean runs over the classes with support (N_c > 0); a class absent from the truth has no defined
    recall and is left out. This equals sklearn `balanced_accuracy_score(labels, preds)`.
    """
    return float(np.nanmean(precision_recall_f1_support(labels, preds, num_classes)[1]))


def accuracy(labels, preds, num_classes: int) -> float:
    """Fraction of samples predicted correctly."""
    labels, preds = _pair(labels, preds, num_classes)
    return float(np.mean(labels == preds))


def macro_f1(labels, preds, num_classes: int) -> float:
    """Mean F1 over all K classes, an undefined F1 counted as 0 (sklearn `labels=range(K)`,
    `zero_division=0`). It differs from `uf1` only when a class is absent from truth and predictions."""
    return float(np.mean(np.nan_to_num(precision_recall_f1_support(labels, preds, num_classes)[2])))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="stable")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def roc_auc_ovr(labels, probs) -> list[float | None]:
    """One-vs-rest ROC AUC of each class from its probability column (Mann-Whitney U, ties counted 1/2).

    A class with no positive or no negative sample has no AUC: None.
    """
    probs = _check_probs(probs)
    labels = _class_ids("labels", labels, probs.shape[1])
    if labels.shape[0] != probs.shape[0]:
        raise ValueError(f"labels and probs differ in length: {labels.shape[0]} vs {probs.shape[0]}")
    aucs = []
    for c in range(probs.shape[1]):
        positive = labels == c
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            aucs.append(None)
            continue
        rank_sum = _average_ranks(probs[:, c])[positive].sum()
        aucs.append(float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)))
    return aucs


def macro_auc(labels, probs) -> float | None:
    """Mean of the defined one-vs-rest AUCs (None if none is defined). When every class occurs in the
    labels this equals sklearn `roc_auc_score(labels, probs, multi_class="ovr", average="macro")`."""
    defined = [a for a in roc_auc_ovr(labels, probs) if a is not None]
    return float(np.mean(defined)) if defined else None


def _check_probs(probs) -> np.ndarray:
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs must be a non-empty [N, K] array, got shape {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError(f"probs holds NaN or inf (first at row {int(np.flatnonzero(~np.isfinite(probs).all(1))[0])})")
    sums = probs.sum(1)
    bad = (probs < 0).any(1) | (np.abs(sums - 1) > 1e-3)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"probs rows must be probability distributions (non-negative, summing to 1); "
                         f"row {row} is {probs[row].tolist()} (sum {sums[row]:.6g})")
    return probs


def _none_if_nan(x) -> float | None:
    return None if np.isnan(x) else float(x)


def _scores(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> dict:
    return {"n": int(labels.size), "accuracy": accuracy(labels, preds, num_classes),
            "uf1": uf1(labels, preds, num_classes), "uar": uar(labels, preds, num_classes)}


def summarize(labels, probs, folds, datasets, class_names) -> dict:
    """The whole evaluation of pooled held-out predictions, as a JSON-serialisable dict.

    labels int [N]; probs float [N, K] (softmax; prediction = argmax); folds int [N], the fold that
    tested each sample; datasets str [N], the corpus of each sample; class_names K names.
    Pooled numbers (`accuracy`, `uf1`, `uar`, `macro_f1`, `auc`, `per_class`, `confusion_matrix`) are
    the headline; `per_fold` holds each fold's scores with their mean and population std over folds;
    `per_dataset` holds pooled scores on each corpus's samples. Undefined values are None.
    """
    class_names = [str(c) for c in class_names]
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be unique, got {class_names}")
    probs = _check_probs(probs)
    k = len(class_names)
    if probs.shape[1] != k:
        raise ValueError(f"probs has {probs.shape[1]} columns but class_names has {k} names")
    labels = _class_ids("labels", labels, k)
    folds, datasets = np.asarray(folds), np.asarray(datasets).astype(str)
    for name, values in (("labels", labels), ("folds", folds), ("datasets", datasets)):
        if values.shape != (probs.shape[0],):
            raise ValueError(f"{name} must have shape ({probs.shape[0]},) like probs, got {values.shape}")
    if not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"folds must hold integer fold ids, got dtype {folds.dtype}")
    preds = probs.argmax(1)

    precision, recall, f1, support = precision_recall_f1_support(labels, preds, k)
    aucs = roc_auc_ovr(labels, probs)
    per_class = {name: {"precision": _none_if_nan(precision[c]), "recall": _none_if_nan(recall[c]),
                        "f1": _none_if_nan(f1[c]), "support": int(support[c]), "auc": aucs[c]}
                 for c, name in enumerate(class_names)}

    fold_rows = [{"fold": int(f), **_scores(labels[folds == f], preds[folds == f], k)} for f in np.unique(folds)]
    per_fold = {"folds": fold_rows}
    for stat, fn in (("mean", np.mean), ("std", np.std)):
        per_fold[stat] = {m: float(fn([row[m] for row in fold_rows])) for m in ("accuracy", "uf1", "uar")}

    per_dataset = {}
    for d in np.unique(datasets):
        rows = datasets == d
        per_dataset[str(d)] = {**_scores(labels[rows], preds[rows], k),
                               "confusion_matrix": confusion_matrix(labels[rows], preds[rows], k).tolist()}

    return {**_scores(labels, preds, k), "macro_f1": macro_f1(labels, preds, k), "auc": macro_auc(labels, probs),
            "per_class": per_class, "confusion_matrix": confusion_matrix(labels, preds, k).tolist(),
            "per_fold": per_fold, "per_dataset": per_dataset}
