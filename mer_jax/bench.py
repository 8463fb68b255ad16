"""Benchmarks that print figures measured in one process.

  python -m mer_jax.bench loso --config configs/m3enet.py:smoke
trains the same LOSO folds twice, with fold_chunk = all folds (vmapped together) and fold_chunk = 1
(one after another, the same code path), and prints both wall times and their ratio (last line).
Features are computed (or read from the cache) before timing; compile time is included in both.
"""
from __future__ import annotations

import tempfile
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, optionally `path.py:variant`.")
flags.mark_flags_as_required(["config"])


def _time_loso(config, fold_chunk: int) -> float:
    from mer_jax import experiment

    config = config.copy_and_resolve_references()
    config.train.fold_chunk = fold_chunk
    config.train.progress = False
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        experiment.train_and_evaluate(config, workdir)
        return time.perf_counter() - start


def bench_loso(config) -> None:
    from mer_jax import experiment

    corpus = experiment.load_inputs(config)[0]   # builds the corpus and caches features before timing
    num_folds = experiment.make_plan(config, corpus).num_folds
    together = _time_loso(config, 0)
    sequential = _time_loso(config, 1)
    print(f"folds: {num_folds}, epochs: {config.train.num_epochs}, corpus: {config.dataset.name}")
    print(f"fold_chunk=all ({num_folds} folds vmapped): {together:.1f} s")
    print(f"fold_chunk=1 (one fold at a time): {sequential:.1f} s")
    print(f"ratio sequential/all: {sequential / together:.2f}")


def main(argv) -> None:
    if len(argv) != 2 or argv[1] not in {"loso"}:
        raise app.UsageError("usage: python -m mer_jax.bench loso --config CONFIG")
    bench_loso(_CONFIG.value)


if __name__ == "__main__":
    app.run(main)
