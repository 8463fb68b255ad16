"""The run report: files, results.json round trip, PNGs, Markdown headline and the test_selected label."""
import json

import numpy as np
import pytest
from matplotlib import image

from mer_jax.evaluate import metrics, report


def make_results(selection="last", datasets=("casme2", "samm", "smic"), seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 90)
    logits = rng.normal(size=(90, 3)) + 2 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    summary = metrics.summarize(labels, probs, rng.integers(0, 6, 90), rng.choice(datasets, 90),
                                ["negative", "positive", "surprise"])
    return {**summary, "model": "m3enet", "corpus": "megc2019_cde",
            "protocol": {"name": "loso", "num_folds": 6}, "selection": selection,
            "config": {"seed": 0, "train": {"num_epochs": 4}}}


HISTORY = {"epoch": [1, 2, 3, 4], "train_loss": [1.1, 0.8, 0.6, 0.5], "train_accuracy": [0.4, 0.6, 0.7, 0.8],
           "eval_epoch": [2, 4], "test_uf1": [0.5, 0.6], "test_uar": [0.52, 0.61], "val_uf1": [0.55, 0.65]}


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000
    pixels = image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200 and pixels.std() > 0.05


def test_report_files_json_and_pngs(tmp_path):
    results = make_results()
    written = report.write_report(tmp_path, results, HISTORY)
    expected = ["results.json", "results.md", "confusion_matrix.png", "confusion_matrix_casme2.png",
                "confusion_matrix_samm.png", "confusion_matrix_smic.png", "curves.png"]
    assert sorted(written) == sorted(expected)
    for name in expected:
        assert written[name] == tmp_path / name and written[name].exists()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == results
    for key in report.REQUIRED_KEYS:
        assert key in saved
    for name in expected[2:]:
        assert_png(tmp_path / name)


def test_single_dataset_has_no_per_dataset_pngs_and_history_is_optional(tmp_path):
    written = report.write_report(tmp_path / "run", make_results(datasets=("casme2",)))
    assert sorted(written) == ["confusion_matrix.png", "results.json", "results.md"]
    assert_png(tmp_path / "run" / "confusion_matrix.png")


def test_curves_without_held_out_scores(tmp_path):
    history = {k: HISTORY[k] for k in ("epoch", "train_loss", "train_accuracy")}
    assert_png(report.write_report(tmp_path, make_results(), history)["curves.png"])


@pytest.mark.parametrize("selection", ["last", "val", "test_selected"])
def test_markdown_headline_and_selection_label(tmp_path, selection):
    results = make_results(selection)
    report.write_report(tmp_path, results)
    text = (tmp_path / "results.md").read_text()
    for key in ("uf1", "uar", "accuracy", "auc", "macro_f1"):
        assert f"{results[key]:.4f}" in text
    assert f"| n | {results['n']} |" in text
    for name, row in results["per_class"].items():
        assert f"| {name} | {row['precision']:.4f} |" in text
    for dataset, row in results["per_dataset"].items():
        assert f"| {dataset} | {row['n']} | {row['uf1']:.4f} |" in text
    assert f"{results['per_fold']['mean']['uf1']:.4f} ± {results['per_fold']['std']['uf1']:.4f}" in text
    captions = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(captions) == 8 and all(f"selection: {selection}" in c for c in captions)
    if selection == "test_selected":
        assert text.split("\n\n")[1].startswith("> **WARNING: test_selected.**")
        assert "leaks test information" in text
    else:
        assert "test_selected" not in text and "WARNING" not in text


@pytest.mark.parametrize("key", report.REQUIRED_KEYS)
def test_missing_required_key_raises(tmp_path, key):
    results = make_results()
    del results[key]
    with pytest.raises(ValueError, match=f"lacks required keys \\['{key}'\\]"):
        report.write_report(tmp_path, results)
    assert not any(tmp_path.iterdir())


def test_bad_selection_and_history_raise(tmp_path):
    with pytest.raises(ValueError, match="selection"):
        report.write_report(tmp_path, make_results("best"))
    with pytest.raises(ValueError, match="history\\['test_uar'\\] has 1 values but history\\['eval_epoch'\\] has 2"):
        report.write_report(tmp_path, make_results(), {**HISTORY, "test_uar": [0.5]})
    with pytest.raises(ValueError, match="history lacks 'train_loss'"):
        report.write_report(tmp_path, make_results(), {"epoch": [1], "train_accuracy": [0.5]})
    assert not any(tmp_path.iterdir())


def test_markdown_names_the_inputs_and_the_start_model():
    results = {**make_results(), "inputs": ["texture", "au"],
               "started_from": {"run": "runs/madv_smic", "fold": "smic/s1"}}
    text = report.markdown(results)
    assert "- **inputs**: texture, au" in text
    assert "- **started from**: the model of fold smic/s1 of the run in `runs/madv_smic`" in text
    assert "started from" not in report.markdown(make_results())
