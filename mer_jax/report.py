"""Compare finished runs with the numbers the papers publish, in one Markdown table.

    python -m mer_jax.report RUN_DIR [RUN_DIR ...] [--out FILE.md] [--no-complexity]

Each run (a workdir with results.json) gets a row: network, corpus, protocol, label scheme, selection,
pooled UF1 / UAR / accuracy, and the parameters and inference FLOPs of its model, built abstractly from
its config (mer_jax.models.complexity). Under it come the published rows of the same network on the
same corpus (mer_jax.evaluate.published, with the paper's parameters and FLOPs from
mer_jax.models.paper_figures) and whether each is comparable: same corpus (and composite part), label
scheme, protocol, variant and an epoch-selection rule of the same kind. A run whose epochs were
selected on the test subjects (`test_selected`) is comparable only with papers that did the same, and
is flagged as leaking test labels. A workdir with checkpoints/run.json but no results.json is an
interrupted run: it is skipped with a message.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mer_jax.evaluate.published import PUBLISHED, UNREADABLE, UNSTATED, Published
from mer_jax.models.paper_figures import PAPER_FIGURES

COLUMNS = ("row", "network", "corpus", "protocol", "label scheme", "selection", "UF1", "UAR", "Acc", "params",
           "FLOPs", "comparable")
RUN_KEYS = ("model", "corpus", "protocol", "selection", "uf1", "uar", "accuracy", "config")
LEAK = "the run selected epochs on its test subjects: it leaks test labels"


class ReportError(Exception):
    """A RUN_DIR that cannot be reported (missing, not a run, or a malformed results.json)."""


def load_run(run_dir) -> dict | None:
    """results.json of `run_dir`, or None for an interrupted run (checkpoints/run.json, no results.json)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run directory")
    path = run_dir / "results.json"
    if not path.is_file():
        if (run_dir / "checkpoints" / "run.json").is_file():
            return None
        raise ReportError(f"{run_dir} has no results.json and no checkpoints/run.json: not a mer_jax run directory")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ReportError(f"{path} is not valid JSON: {e}") from e
    missing = [k for k in RUN_KEYS if k not in results]
    if missing:
        raise ReportError(f"{path} lacks required keys {missing}")
    if "label_scheme" not in results["protocol"] or "name" not in results["protocol"]:
        raise ReportError(f"{path}: protocol must give 'name' and 'label_scheme', got {sorted(results['protocol'])}")
    return results


def run_variant(results: dict) -> str:
    """"adaptive" for a DSTNet run with the adaptive-alpha loop (train.adaptive_threshold > 0), else ""."""
    if results["model"] == "dstnet" and results["config"].get("train", {}).get("adaptive_threshold", 0) > 0:
        return "adaptive"
    return ""


def corpus_matches(entry_corpus: str, run_corpus: str) -> bool:
    """`casme2` matches `casme2/cropped`; `smic/hs` matches `smic/hs` and `smic/hs_raw` but not `smic/vis`."""
    builder, _, prefix = entry_corpus.partition("/")
    run_builder, _, run_config = run_corpus.partition("/")
    return builder == run_builder and run_config.startswith(prefix)


def listed(entry: Published, results: dict) -> bool:
    """Whether `entry` is shown under the run: same network and corpus builder, a protocol that is the
    run's or not stated."""
    return (entry.network == results["model"] and entry.corpus.split("/")[0] == results["corpus"].split("/")[0]
            and entry.protocol in (results["protocol"]["name"], "unknown"))


def compare(entry: Published, results: dict) -> tuple[str, list[str]]:
    """("yes" | "no" | "unknown", reasons): whether the run's numbers can be set against `entry`."""
    no, unknown, notes = [], [], []
    protocol = results["protocol"]
    if not corpus_matches(entry.corpus, results["corpus"]):
        no.append(f"paper used {entry.corpus}, the run {results['corpus']}")
    if entry.part is not None and entry.part not in results.get("per_dataset", {}):
        no.append(f"the run has no {entry.part} part")
    if entry.label_scheme is None:
        (unknown if entry.classes == UNSTATED else no).append(
            "paper's classes are not stated" if entry.classes == UNSTATED
            else f"paper's classes ({entry.classes}) match no mer_jax label scheme")
    elif entry.label_scheme != protocol["label_scheme"]:
        no.append(f"label scheme {entry.label_scheme} vs the run's {protocol['label_scheme']}")
    if entry.protocol == "unknown":
        unknown.append("paper's protocol is not stated")
    elif entry.protocol != protocol["name"]:
        no.append(f"protocol {entry.protocol} vs the run's {protocol['name']}")
    if entry.variant != run_variant(results):
        no.append(f"paper's variant {entry.variant or 'plain'} vs the run's {run_variant(results) or 'plain'}")
    selection = results["selection"]
    if selection == "released_weights":
        notes.append("the run evaluates released weights")
    elif entry.selection == "unknown":
        unknown.append("paper's epoch selection is not stated")
    elif (selection == "test_selected") != (entry.selection == "test_selected"):
        no.append(f"paper selection {entry.selection} vs the run's {selection}")
    if selection == "test_selected":
        notes.append(LEAK)
    if protocol.get("shuffled_labels"):
        no.append("the run trained on shuffled labels")
    if entry.aggregation == "per_fold_mean" and "mean" in results.get("per_fold", {}):
        mean = results["per_fold"]["mean"]
        notes.append("paper averages per-fold scores; the run's per-fold means: "
                     + ", ".join(f"{k} {_number(mean.get(k))}" for k in ("uf1", "uar", "accuracy")))
    if entry.part is not None and entry.part in results.get("per_dataset", {}):
        part = results["per_dataset"][entry.part]
        notes.append(f"the run's {entry.part} part: "
                     + ", ".join(f"{k} {_number(part.get(k))}" for k in ("uf1", "uar", "accuracy")))
    verdict = "no" if no else "unknown" if unknown else "yes"
    return verdict, no + unknown + notes


def model_complexity(results: dict) -> tuple[int, float]:
    """(parameters, inference FLOPs per sample) of the run's model, built abstractly (nnx.eval_shape)
    from its config for its number of classes."""
    import jax
    from flax import nnx

    from mer_jax.models import complexity, registry

    kwargs = {k: v for k, v in results["config"]["model"].items() if k != "name"}
    name, num_classes = results["model"], len(results["protocol"]["classes"])
    model = nnx.eval_shape(lambda: registry.create_model(name, num_classes, rngs=nnx.Rngs(0), **kwargs))
    one = {k: jax.ShapeDtypeStruct((1,) + tuple(s), jax.numpy.float32)
           for k, s in registry.input_shapes(name, **kwargs).items()}
    return complexity.count_params(model), complexity.flops_per_sample(model, one)


def _number(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def _si(x) -> str:
    if x is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _published_row(entry: Published, results: dict) -> list[str]:
    verdict, reasons = compare(entry, results)
    figures = PAPER_FIGURES.get(entry.network)
    others = [f"{k} {v:.4f}" for k, v in entry.metrics.items() if k not in ("uf1", "uar", "accuracy")]
    corpus = entry.corpus + (f" ({entry.part} part)" if entry.part else "")
    network = entry.network + (f" ({entry.variant})" if entry.variant else "")
    why = "; ".join(reasons + ([f"paper also gives {', '.join(others)}"] if others else [])
                    + ([entry.note] if entry.note else []))
    return [f"paper: {entry.source}", network, corpus, entry.protocol,
            entry.label_scheme or entry.classes, entry.selection, _number(entry.metrics.get("uf1")),
            _number(entry.metrics.get("uar")), _number(entry.metrics.get("accuracy")),
            _si(figures and figures.params), _si(figures and figures.flops), f"{verdict}: {why}" if why else verdict]


def table(runs: list[tuple[str, dict]], complexity: bool = True) -> str:
    """The Markdown table of `runs` ([(run dir, results)]) and the published rows under each."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for run_dir, results in runs:
        params, flops = None, None
        if complexity:
            try:
                params, flops = model_complexity(results)
            except (TypeError, ValueError) as e:   # e.g. a config field this version's model no longer takes
                print(f"{run_dir}: cannot build {results['model']} from its config ({e}); params and FLOPs "
                      "left out", file=sys.stderr)
        network = results["model"] + (f" ({run_variant(results)})" if run_variant(results) else "")
        flag = LEAK if results["selection"] == "test_selected" else ""
        row = [f"run: {run_dir}", network, results["corpus"], results["protocol"]["name"],
               results["protocol"]["label_scheme"], results["selection"], _number(results["uf1"]),
               _number(results["uar"]), _number(results["accuracy"]), _si(params), _si(flops), flag]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        entries = [e for e in PUBLISHED if listed(e, results)]
        for entry in entries:
            lines.append("| " + " | ".join(_cell(c) for c in _published_row(entry, results)) + " |")
        if not entries:
            why = UNREADABLE.get(results["model"], f"no paper row for {results['model']} on "
                                 f"{results['corpus'].split('/')[0]} under {results['protocol']['name']}")
            lines.append("| " + " | ".join(_cell(c) for c in ["paper: -", results["model"], "", "", "", "", "", "",
                                                              "", "", "", f"none: {why}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mer_jax.report", description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="workdir of a run (holds results.json)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    parser.add_argument("--no-complexity", action="store_true",
                        help="leave out the parameter and FLOP counts of the runs' models (no model is built)")
    args = parser.parse_args(argv)
    runs = []
    try:
        for run_dir in args.run_dirs:
            results = load_run(run_dir)
            if results is None:
                print(f"skipping {run_dir}: interrupted run (checkpoints/run.json but no results.json); run it "
                      "again with the same --workdir to finish it", file=sys.stderr)
            else:
                runs.append((run_dir, results))
    except ReportError as e:
        parser.error(str(e))
    if not runs:
        parser.error("no finished run among the RUN_DIRs")
    text = table(runs, complexity=not args.no_complexity)
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
