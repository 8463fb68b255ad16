"""`python -m mer_jax.report`: runs set against the published numbers, on hand-written results.json files."""
import json
import re
from pathlib import Path

import pytest

from mer_jax import report
from mer_jax.data import taxonomy
from mer_jax.evaluate import published
from mer_jax.models import registry
from mer_jax.models.paper_figures import PAPER_FIGURES

BUILDERS = {p.name for p in (Path(__file__).parents[1] / "tfds_builders").iterdir() if p.is_dir()}


def _results(model="dstnet", corpus="megc2019_cde/cropped", protocol="loso", scheme="megc3", selection="last",
             model_config=None, adaptive=0.0, shuffled=False) -> dict:
    """A results.json as experiment.train_and_evaluate writes it, with the fields the report reads."""
    classes = list(taxonomy.LABEL_SCHEMES[scheme])
    part = {"n": 10, "accuracy": 0.5, "uf1": 0.25, "uar": 0.375}
    return {
        "n": 30, "accuracy": 0.6, "uf1": 0.4567, "uar": 0.5678, "macro_f1": 0.4567, "auc": 0.7,
        "per_fold": {"folds": [], "mean": {"accuracy": 0.55, "uf1": 0.35, "uar": 0.45}, "std": {}},
        "per_dataset": {"smic": part, "casme2": part, "samm": part} if corpus.startswith("megc2019_cde") else {},
        "model": model, "inputs": [], "corpus": corpus,
        "protocol": {"name": protocol, "num_folds": 3, "label_scheme": scheme, "classes": classes,
                     "excluded_by_label_scheme": {}, "shuffled_labels": shuffled},
        "selection": selection,
        "config": {"model": {"name": model, **(model_config or {})}, "train": {"adaptive_threshold": adaptive}},
    }


def _write(directory: Path, results: dict) -> str:
    directory.mkdir(parents=True)
    (directory / "results.json").write_text(json.dumps(results))
    return str(directory)


def _entry(network, corpus, part=None, variant="", protocol="loso", label_scheme="any") -> published.Published:
    matches = [e for e in published.PUBLISHED if e.network == network and e.corpus == corpus and e.part == part
               and e.variant == variant and e.protocol == protocol
               and label_scheme in ("any", e.label_scheme)]
    assert len(matches) == 1, matches
    return matches[0]


def test_table_rows(tmp_path):
    run = _write(tmp_path / "dst", _results())
    text = report.table([(run, report.load_run(run))], complexity=False)
    lines = text.splitlines()
    assert lines[0].split("|")[1:-1] == [f" {c} " for c in report.COLUMNS]
    assert f"| run: {run} | dstnet | megc2019_cde/cropped | loso | megc3 | last | 0.4567 | 0.5678 | 0.6000 | - | - |" \
        in text
    # Adaptive DSTNet Table 7, both variants, composite and its three parts; Table 8 (LODO) is not listed.
    papers = [line for line in lines if line.startswith("| paper:")]
    assert len(papers) == 8 and not any("Table 8" in line for line in papers)
    cde = next(line for line in papers if "| dstnet | megc2019_cde | " in line)
    assert "| 0.7979 | 0.7758 | - | 3.15M | 64.77M | unknown: paper's epoch selection is not stated |" in cde
    adaptive = next(line for line in papers if "| dstnet (adaptive) | megc2019_cde | " in line)
    assert "no: paper's variant adaptive vs the run's plain" in adaptive
    assert "the run's casme2 part: uf1 0.2500, uar 0.3750, accuracy 0.5000" in text


def test_comparable_when_everything_matches():
    verdict, reasons = report.compare(_entry("ststnet", "megc2019_cde"), _results(model="ststnet"))
    assert (verdict, reasons) == ("yes", [])


@pytest.mark.parametrize("entry, run, reason", [
    (_entry("edmdbn", "smic/hs"), _results("edmdbn", "smic/vis"), "paper used smic/hs, the run smic/vis"),
    (_entry("edmdbn", "casme2"), _results("edmdbn", "samm/default", scheme="samm_5"), "paper used casme2"),
    (_entry("edmdbn", "casme2"), _results("edmdbn", "casme2/cropped", scheme="megc3"),
     "label scheme casme2_5 vs the run's megc3"),
    (_entry("ststnet", "megc2019_cde"), _results("ststnet", protocol="lodo"), "protocol loso vs the run's lodo"),
    (_entry("ststnet", "megc2019_cde"), _results("ststnet", protocol="kfold"), "protocol loso vs the run's kfold"),
    (_entry("dstnet", "megc2019_cde", variant="adaptive"), _results(),
     "paper's variant adaptive vs the run's plain"),
    (_entry("edmdbn", "megc2019_cde"), _results("edmdbn", selection="last"),
     "paper selection test_selected vs the run's last"),
    (_entry("edmdbn", "megc2019_cde"), _results("edmdbn", selection="val"),
     "paper selection test_selected vs the run's val"),
    (_entry("ststnet", "megc2019_cde"), _results("ststnet", selection="test_selected"),
     "paper selection last vs the run's test_selected"),
    (_entry("ststnet", "megc2019_cde"), _results("ststnet", shuffled=True), "the run trained on shuffled labels"),
    (_entry("ststnet", "megc2019_cde", part="samm"), _results("ststnet", corpus="megc2019_cde/cropped") | {
        "per_dataset": {}}, "the run has no samm part"),
    (_entry("edmdbn", "mmew", label_scheme=None), _results("edmdbn", "mmew/default", scheme="mmew_4"),
     "match no mer_jax label scheme"),
])
def test_not_comparable(entry, run, reason):
    verdict, reasons = report.compare(entry, run)
    assert verdict == "no"
    assert any(reason in r for r in reasons), reasons


def test_test_selected_run_matches_a_test_selected_paper_and_is_flagged():
    verdict, reasons = report.compare(_entry("edmdbn", "megc2019_cde"), _results("edmdbn", selection="test_selected"))
    assert verdict == "yes"
    assert report.LEAK in reasons
    # EDMDBN averages per-fold scores: the run's per-fold means are given beside its pooled numbers.
    assert "paper averages per-fold scores; the run's per-fold means: uf1 0.3500, uar 0.4500, accuracy 0.5500" \
        in reasons


@pytest.mark.parametrize("entry, run, reason", [
    (_entry("m3enet", "casme2"), _results("m3enet", "casme2/cropped", scheme="casme2_5"),
     "paper's classes are not stated"),
    (_entry("madvnet", "samm", protocol="unknown"), _results("madvnet", "samm/default", scheme="samm_8"),
     "paper's protocol is not stated"),
    (_entry("dstnet", "megc2019_cde"), _results(selection="val"), "paper's epoch selection is not stated"),
])
def test_unknown_when_the_paper_does_not_say(entry, run, reason):
    verdict, reasons = report.compare(entry, run)
    assert verdict == "unknown" and reason in reasons


@pytest.mark.parametrize("entry_corpus, run_corpus, match", [
    ("smic/hs", "smic/hs", True), ("smic/hs", "smic/hs_raw", True), ("smic/hs", "smic/vis", False),
    ("casme2", "casme2/cropped", True), ("casme", "casme2/cropped", False), ("samm", "synthetic_me/smoke", False)])
def test_corpus_matches(entry_corpus, run_corpus, match):
    assert report.corpus_matches(entry_corpus, run_corpus) is match


def test_every_published_entry_is_sourced_and_known():
    assert published.PUBLISHED
    for e in published.PUBLISHED:
        assert re.search(r"(Table|section) \d", e.source) and e.source.split()[0] in {
            "Adaptive", "EDMDBN", "M3ENet", "MADV-Net"}, e
        assert e.network in registry.MODELS and e.corpus.split("/")[0] in BUILDERS, e
        assert e.label_scheme is None or e.label_scheme in taxonomy.LABEL_SCHEMES, e
        assert e.classes, e
        assert e.selection in published.SELECTIONS and e.protocol in published.PROTOCOLS, e
        assert e.aggregation in published.AGGREGATIONS and e.basis, e
        assert e.metrics and set(e.metrics) <= set(published.METRICS), e
        assert all(0 < v <= 1 for v in e.metrics.values()), e
        assert e.part is None or (e.corpus == "megc2019_cde" and e.part in ("smic", "casme2", "samm")), e
        assert e.variant in ("", "adaptive") and (e.variant == "" or e.network == "dstnet"), e
    networks = {e.network for e in published.PUBLISHED} | set(published.UNREADABLE)
    assert {"dfrnet", "dstnet", "edmdbn", "m3enet", "madvnet", "ststnet", "offapexnet"} <= networks
    assert set(published.UNREADABLE) <= set(registry.MODELS) and set(PAPER_FIGURES) <= set(registry.MODELS)


def test_network_without_readable_numbers(tmp_path):
    run = _write(tmp_path / "dfr", _results("dfrnet"))
    text = report.table([(run, report.load_run(run))], complexity=False)
    assert "none: DFR-Net Table 2" in text


def test_main_prints_writes_and_counts_the_model(tmp_path, capsys):
    run = _write(tmp_path / "m3e", _results("m3enet", "casme2/cropped", scheme="casme2_5",
                                            model_config={"input_size": 48, "streams": "all"}))
    out = tmp_path / "compare.md"
    assert report.main([run, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text()
    # 5 classes at 48 x 48 as configs/m3enet.py builds it: 6,006,213 parameters (a concrete build counts the
    # same; M3ENet Table 4: 6.01M) and 73.5M XLA FLOPs.
    row = next(line for line in printed.splitlines() if line.startswith("| run:"))
    assert "| 6.01M | 73.51M |" in row
    assert report.model_complexity(report.load_run(run))[0] == 6_006_213
    assert "| paper: M3ENet Table 2 | m3enet | casme2 |" in printed


def test_interrupted_run_is_skipped(tmp_path, capsys):
    run = _write(tmp_path / "done", _results())
    interrupted = tmp_path / "interrupted" / "checkpoints"
    interrupted.mkdir(parents=True)
    (interrupted / "run.json").write_text("{}")
    assert report.main([str(tmp_path / "interrupted"), run, "--no-complexity"]) == 0
    captured = capsys.readouterr()
    assert f"skipping {tmp_path / 'interrupted'}: interrupted run" in captured.err
    assert f"run: {run}" in captured.out
    with pytest.raises(SystemExit):
        report.main([str(tmp_path / "interrupted"), "--no-complexity"])
    assert "no finished run" in capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "no such run directory"),
    (lambda d: d.mkdir(), "has no results.json and no checkpoints/run.json"),
    (lambda d: _write(d, {k: v for k, v in _results().items() if k != "selection"}),
     "lacks required keys ['selection']"),
])
def test_bad_run_dir(tmp_path, capsys, make, message):
    run = tmp_path / "bad"
    make(run)
    with pytest.raises(report.ReportError, match=re.escape(message)):
        report.load_run(run)
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(run), "--no-complexity"])
    assert exit_info.value.code == 2
    assert str(run) in capsys.readouterr().err


def test_unbuildable_model_leaves_out_its_counts(tmp_path, capsys):
    run = _write(tmp_path / "old", _results("m3enet", "casme2/cropped", scheme="casme2_5",
                                            model_config={"input_size": 48, "no_such_field": 1}))
    text = report.table([(run, report.load_run(run))])
    assert "| 0.6000 | - | - |" in text
    assert f"{run}: cannot build m3enet from its config" in capsys.readouterr().err
