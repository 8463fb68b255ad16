"""Benchmarks that print figures measured in one process.

  python -m mer_jax.bench loso --config configs/m3enet.py:smoke
trains the same LOSO folds twice, with fold_chunk = all folds (vmapped together) and fold_chunk = 1
(one after another, the same code path), and prints both wall times and their ratio (last line).
Features are computed (or read from the cache) before timing; compile time is included in both.

  python -m mer_jax.bench tvl1 [--sizes=48,128,256 --batches=1,64]
times the JAX Dual TV-L1 (jitted, batched; compilation excluded) and OpenCV's DualTVL1 (one pair after
another on the host) on pairs with known flow, prints pairs/s and mean endpoint errors of both per size and
batch, and (last line) the throughput ratio JAX / OpenCV at 128 x 128, batch 64.
"""
from __future__ import annotations

import tempfile
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, optionally `path.py:variant` (loso).")
_SIZES = flags.DEFINE_list("sizes", ["48", "128", "256"], "Frame sides for tvl1.")
_BATCHES = flags.DEFINE_list("batches", ["1", "64"], "Batch sizes for tvl1.")
_PAIRS_PER_STEP = flags.DEFINE_integer("pairs_per_step", None, "tvl1: pairs the JAX TV-L1 iterates together "
                                       "(default: 1 on CPU, the whole batch on an accelerator).")


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


def _pairs_per_second(run, num_pairs: int, min_seconds: float = 1.0) -> float:
    """Pairs per second of `run()` (which handles `num_pairs` pairs), repeated for at least min_seconds."""
    start, repeats = time.perf_counter(), 0
    while True:
        run()
        repeats += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return repeats * num_pairs / elapsed


def bench_tvl1(sizes: list[int], batches: list[int], pairs_per_step: int | None = None) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mer_jax.data.synthetic.flow_pairs import endpoint_error, known_flow_pairs
    from mer_jax.features.flow_tvl1 import tvl1_flow
    from mer_jax.features.tvl1_jax import tvl1_flow_batch

    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {len(jax.devices())} device(s); "
          f"JAX pairs_per_step: {pairs_per_step or 'default'}")
    ratio = None
    for size in sizes:
        for batch in batches:
            first, second, truth = known_flow_pairs(batch, size)
            a, b = jnp.asarray(first), jnp.asarray(second)
            flow = lambda: tvl1_flow_batch(a, b, pairs_per_step=pairs_per_step).block_until_ready()
            ours = np.asarray(flow())   # compiles
            jax_rate = _pairs_per_second(flow, batch)
            theirs = np.stack([tvl1_flow(x, y) for x, y in zip(first, second)])
            cv_rate = _pairs_per_second(lambda: [tvl1_flow(x, y) for x, y in zip(first, second)], batch)
            print(f"{size}x{size} batch {batch}: JAX {jax_rate:.2f} pairs/s (EPE {endpoint_error(ours, truth).mean():.4f}), "
                  f"OpenCV {cv_rate:.2f} pairs/s (EPE {endpoint_error(theirs, truth).mean():.4f}), "
                  f"ratio {jax_rate / cv_rate:.2f}")
            if (size, batch) == (128, 64):
                ratio = jax_rate / cv_rate
    print(f"ratio JAX/OpenCV at 128x128 batch 64: {ratio:.2f}" if ratio is not None
          else "ratio JAX/OpenCV at 128x128 batch 64: not measured (add 128 to --sizes and 64 to --batches)")


def main(argv) -> None:
    usage = "usage: python -m mer_jax.bench loso --config CONFIG | python -m mer_jax.bench tvl1 [--sizes ...]"
    if len(argv) != 2 or argv[1] not in {"loso", "tvl1"}:
        raise app.UsageError(usage)
    if argv[1] == "tvl1":
        bench_tvl1([int(s) for s in _SIZES.value], [int(b) for b in _BATCHES.value], _PAIRS_PER_STEP.value)
    elif _CONFIG.value is None:
        raise app.UsageError("loso needs --config")
    else:
        bench_loso(_CONFIG.value)


if __name__ == "__main__":
    app.run(main)
