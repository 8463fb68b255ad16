"""Pooled metrics against scikit-learn, a hand-computed MEGC example, and input validation."""
import json

import numpy as np
import pytest
from sklearn import metrics as skm

from mer_jax.evaluate import metrics


def softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def random_run(seed, n=120, k=4, absent=None):
    """Labels, informative probabilities, folds and datasets; class `absent` never occurs in the labels."""
    rng = np.random.default_rng(seed)
    classes = [c for c in range(k) if c != absent]
    labels = rng.choice(classes, n)
    probs = softmax(rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels])
    folds = rng.integers(0, 7, n)
    datasets = rng.choice(["casme2", "samm", "smic"], n)
    return labels, probs, folds, datasets


def check_against_sklearn(labels, preds, k):
    assert metrics.accuracy(labels, preds, k) == pytest.approx(skm.accuracy_score(labels, preds))
    assert metrics.uf1(labels, preds, k) == pytest.approx(skm.f1_score(labels, preds, average="macro"))
    assert metrics.uar(labels, preds, k) == pytest.approx(skm.balanced_accuracy_score(labels, preds))
    assert metrics.macro_f1(labels, preds, k) == pytest.approx(
        skm.f1_score(labels, preds, labels=range(k), average="macro", zero_division=0))
    np.testing.assert_array_equal(metrics.confusion_matrix(labels, preds, k),
                                  skm.confusion_matrix(labels, preds, labels=range(k)))
    ours = metrics.precision_recall_f1_support(labels, preds, k)
    theirs = skm.precision_recall_fscore_support(labels, preds, labels=range(k), zero_division=np.nan)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, equal_nan=True)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn(seed):
    labels, probs, _, _ = random_run(seed, k=3 + seed % 3)
    check_against_sklearn(labels, probs.argmax(1), probs.shape[1])
    auc = skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro")
    assert metrics.macro_auc(labels, probs) == pytest.approx(auc)


@pytest.mark.parametrize("seed", range(3))
def test_absent_class_is_left_out_of_uf1_and_uar_but_counted_in_macro_f1(seed):
    labels, probs, _, _ = random_run(seed, k=4, absent=2)
    probs[:, 2] = 0  # class 2 is neither true nor predicted
    probs /= probs.sum(1, keepdims=True)
    preds = probs.argmax(1)
    check_against_sklearn(labels, preds, 4)
    assert metrics.macro_f1(labels, preds, 4) == pytest.approx(metrics.uf1(labels, preds, 4) * 3 / 4)
    aucs = metrics.roc_auc_ovr(labels, probs)
    assert aucs[2] is None
    for c in (0, 1, 3):
        assert aucs[c] == pytest.approx(skm.roc_auc_score(labels == c, probs[:, c]))
    assert metrics.macro_auc(labels, probs) == pytest.approx(np.mean([aucs[c] for c in (0, 1, 3)]))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_class_predicted_but_never_true_counts_in_uf1_not_uar():
    labels = np.array([0, 0, 1, 1])
    preds = np.array([0, 2, 1, 1])
    check_against_sklearn(labels, preds, 3)
    assert metrics.uf1(labels, preds, 3) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert metrics.uar(labels, preds, 3) == pytest.approx((1 / 2 + 1) / 2)


def test_perfect_predictions():
    labels = np.array([0, 1, 2, 2, 1, 0, 2])
    probs = np.eye(3)[labels] * 0.9 + 0.1 / 3
    summary = metrics.summarize(labels, probs, np.zeros(7, int), ["casme2"] * 7, ["a", "b", "c"])
    for key in ("accuracy", "uf1", "uar", "macro_f1", "auc"):
        assert summary[key] == 1.0
    check_against_sklearn(labels, labels, 3)


def test_auc_with_ties_matches_sklearn():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 200)
    probs = np.round(softmax(rng.normal(size=(200, 3)) + np.eye(3)[labels]), 1)  # many ties
    probs /= probs.sum(1, keepdims=True)
    for c, auc in enumerate(metrics.roc_auc_ovr(labels, probs)):
        assert auc == pytest.approx(skm.roc_auc_score(labels == c, probs[:, c]))


def test_hand_computed_megc_example():
    # Two folds of five samples, pooled confusion matrix (rows = truth):
    #   [[4, 1, 0],     TP = (4, 2, 1), FP = (2, 1, 0), FN = (1, 1, 1), support = (5, 3, 2)
    #    [1, 2, 0],     F1 = (8/11, 2/3, 2/3)  -> UF1 = 68/99
    #    [1, 0, 1]]     recall = (4/5, 2/3, 1/2) -> UAR = 59/90; accuracy = 7/10
    # (macro precision would be (2/3 + 2/3 + 1)/3 = 7/9: not the UAR.)
    # Fold 0 (truth all class 0): UF1 over classes {0, 1} = (8/9 + 0)/2 = 4/9, UAR = 4/5.
    # Fold 1: UF1 = (0 + 4/5 + 2/3)/3 = 22/45, UAR over classes {1, 2} = (2/3 + 1/2)/2 = 7/12.
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    preds = np.array([0, 0, 0, 0, 1, 1, 1, 0, 2, 0])
    probs = np.eye(3)[preds] * 0.7 + 0.1
    folds = np.repeat([0, 1], 5)
    s = metrics.summarize(labels, probs, folds, ["smic"] * 10, ["negative", "positive", "surprise"])
    assert s["confusion_matrix"] == [[4, 1, 0], [1, 2, 0], [1, 0, 1]]
    assert s["uf1"] == pytest.approx(68 / 99)
    assert s["uar"] == pytest.approx(59 / 90)
    assert s["accuracy"] == pytest.approx(0.7)
    # AUC of "negative": scores 0.8 (predicted) or 0.1; positives (0.8 x4, 0.1), negatives (0.8 x2, 0.1 x3).
    # Of 25 pairs, 12 wins and 8 ties for the 0.8 positives, 3 ties for the 0.1 one: (12 + 11/2) / 25 = 0.7.
    assert s["per_class"]["negative"] == pytest.approx(
        {"precision": 4 / 6, "recall": 4 / 5, "f1": 8 / 11, "support": 5, "auc": 0.7})
    fold0, fold1 = s["per_fold"]["folds"]
    assert (fold0["uf1"], fold0["uar"]) == pytest.approx((4 / 9, 4 / 5))
    assert (fold1["uf1"], fold1["uar"]) == pytest.approx((22 / 45, 7 / 12))
    assert s["per_fold"]["mean"]["uf1"] == pytest.approx(7 / 15)  # well below the pooled 68/99
    assert s["per_fold"]["std"]["uf1"] == pytest.approx(abs(4 / 9 - 22 / 45) / 2)
    k4 = np.concatenate([probs, np.zeros((10, 1))], 1)  # a fourth class that never occurs
    s4 = metrics.summarize(labels, k4, folds, ["smic"] * 10, ["negative", "positive", "surprise", "other"])
    assert s4["uf1"] == pytest.approx(68 / 99)
    assert s4["macro_f1"] == pytest.approx(68 / 33 / 4)
    assert s4["per_class"]["other"] == {"precision": None, "recall": None, "f1": None, "support": 0, "auc": None}


@pytest.mark.parametrize("seed", range(3))
def test_summarize_breakdowns_match_sklearn_on_subsets(seed):
    labels, probs, folds, datasets = random_run(seed, n=150, k=3)
    names = ["negative", "positive", "surprise"]
    s = metrics.summarize(labels, probs, folds, datasets, names)
    json.dumps(s, allow_nan=False)
    preds = probs.argmax(1)
    assert s["n"] == 150
    assert s["uf1"] == pytest.approx(skm.f1_score(labels, preds, average="macro"))
    assert s["auc"] == pytest.approx(skm.roc_auc_score(labels, probs, multi_class="ovr"))
    p, r, f, n = skm.precision_recall_fscore_support(labels, preds, labels=range(3))
    for c, name in enumerate(names):
        row = s["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[c], r[c], f[c], n[c]))
        assert row["auc"] == pytest.approx(skm.roc_auc_score(labels == c, probs[:, c]))
    assert [row["fold"] for row in s["per_fold"]["folds"]] == sorted(set(folds.tolist()))
    for row in s["per_fold"]["folds"]:
        m = folds == row["fold"]
        assert row["n"] == m.sum()
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(labels[m], preds[m]))
        assert row["uf1"] == pytest.approx(skm.f1_score(labels[m], preds[m], average="macro"))
        assert row["uar"] == pytest.approx(skm.balanced_accuracy_score(labels[m], preds[m]))
    uf1s = [row["uf1"] for row in s["per_fold"]["folds"]]
    assert s["per_fold"]["mean"]["uf1"] == pytest.approx(np.mean(uf1s))
    assert s["per_fold"]["std"]["uf1"] == pytest.approx(np.std(uf1s))
    assert list(s["per_dataset"]) == ["casme2", "samm", "smic"]
    for d, row in s["per_dataset"].items():
        m = datasets == d
        assert row["n"] == m.sum()
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(labels[m], preds[m]))
        assert row["uf1"] == pytest.approx(skm.f1_score(labels[m], preds[m], average="macro"))
        assert row["uar"] == pytest.approx(skm.balanced_accuracy_score(labels[m], preds[m]))
        assert row["confusion_matrix"] == skm.confusion_matrix(labels[m], preds[m], labels=range(3)).tolist()


def test_summarize_rejects_bad_input():
    labels, probs, folds, datasets = random_run(0, n=20, k=3)
    names = ["a", "b", "c"]

    def bad(match, **changes):
        kwargs = {**dict(labels=labels, probs=probs, folds=folds, datasets=datasets, class_names=names), **changes}
        with pytest.raises(ValueError, match=match):
            metrics.summarize(**kwargs)

    bad("labels must lie in", labels=np.where(np.arange(20) == 4, 3, labels))
    bad("labels must lie in", labels=np.where(np.arange(20) == 4, -1, labels))
    bad("labels must hold integer", labels=labels.astype(float))
    bad("labels must have shape", labels=labels[:-1])
    bad("folds must have shape", folds=folds[:-1])
    bad("folds must hold integer", folds=folds.astype(str))
    bad("datasets must have shape", datasets=datasets[:5])
    bad("probs has 3 columns but class_names has 4", class_names=names + ["d"])
    bad("class_names must be unique", class_names=["a", "a", "c"])
    bad("probs holds NaN", probs=np.where(np.arange(20)[:, None] == 7, np.nan, probs))
    bad("probability distributions.*row 0", probs=probs * 2)
    bad("probability distributions.*row 3", probs=np.where(np.arange(20)[:, None] == 3, [1.2, -0.2, 0.0], probs))
    bad("probs must be a non-empty", probs=probs[0])


def test_metric_functions_reject_bad_input():
    with pytest.raises(ValueError, match="labels and preds differ in length"):
        metrics.uf1([0, 1, 2], [0, 1], 3)
    with pytest.raises(ValueError, match="preds must lie in"):
        metrics.uar([0, 1, 2], [0, 1, 5], 3)
    with pytest.raises(ValueError, match="labels must be a non-empty"):
        metrics.accuracy(np.array([], int), np.array([], int), 3)
    with pytest.raises(ValueError, match="labels and probs differ in length"):
        metrics.roc_auc_ovr([0, 1], np.full((3, 2), 0.5))
