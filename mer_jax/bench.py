"""Benchmarks that print figures measured in one process.

  python -m mer_jax.bench loso --net m3enet          (configs/<net>.py, default variant; or --config FILE[:variant])
trains the same LOSO folds twice, with fold_chunk = all folds (vmapped together) and fold_chunk = 1
(one after another, the same code path), and prints both wall and process CPU times and their ratios
(wall last; on a shared machine the CPU-time ratio is the steadier figure).
Features are computed (or read from the cache) before timing; compile time is included in both.

  python -m mer_jax.bench models [--write_docs]
prints, for every network in the model registry (built as its config `configs/<name>.py` builds it, 3 classes):
parameters and per-sample inference FLOPs next to the paper's figures, eval-mode batch-1 latency on the
default device, and training samples/s of the real train step (AdamW, batch `train.batch_size` of the config,
no augmentation); with --write_docs it replaces the table in docs/benchmarks.md.

  python -m mer_jax.bench memory --net edmdbn [--num_folds=26 --num_samples=255 --device_gib=80]
compiles the config's train and predict steps for one fold (nothing is allocated at full size but the
model) and prints XLA's per-fold memory with and without `model.remat`, the shared feature bytes, and the
folds per chunk `train.fold_chunk=auto` would choose on a device with that much free memory.

  python -m mer_jax.bench fold_step --net m3enet [--folds=1,4,12]
times the config's train step (its batch size and augmentation) with F folds vmapped under each
`train.fold_conv` strategy (grouped: JAX's batching of convolutions; loop: one convolution per fold) and
prints wall and process-CPU milliseconds per fold-step, and the compile time.

  python -m mer_jax.bench tvl1 [--sizes=48,128,256 --batches=1,64]
times the JAX Dual TV-L1 (jitted, batched; compilation excluded) and OpenCV's DualTVL1 (one pair after
another on the host) on pairs with known flow, prints pairs/s and mean endpoint errors of both per size and
batch, and (last line) the throughput ratio JAX / OpenCV at 128 x 128, batch 64.
"""
from __future__ import annotations

import copy
import dataclasses
import tempfile
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, optionally `path.py:variant` (loso).")
_NET = flags.DEFINE_string("net", None, "loso, memory, fold_step (and models: only this row): the network whose "
                           "configs/<net>.py (default variant) to time; "
                           "one of the model registry's names.")
_SIZES = flags.DEFINE_list("sizes", ["48", "128", "256"], "Frame sides for tvl1.")
_BATCHES = flags.DEFINE_list("batches", ["1", "64"], "Batch sizes for tvl1.")
_WRITE_DOCS = flags.DEFINE_bool("write_docs", False, "models: write the table into docs/benchmarks.md.")
_FOLDS = flags.DEFINE_list("folds", ["1", "4", "12"], "fold_step: numbers of vmapped folds.")
_NUM_FOLDS = flags.DEFINE_integer("num_folds", 26, "memory: LOSO folds (CASME II: 26 subjects).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 255, "memory: corpus samples (CASME II: 255).")
_DEVICE_GIB = flags.DEFINE_float("device_gib", 80.0, "memory: free memory of one device, GiB.")
_PAIRS_PER_STEP = flags.DEFINE_integer("pairs_per_step", None, "tvl1: pairs the JAX TV-L1 iterates together "
                                       "(default: 1 on CPU, the whole batch on an accelerator).")


def _time_loso(config, fold_chunk: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one full LOSO run."""
    from mer_jax import experiment

    config = copy.deepcopy(config)   # keeps the field types (fold_chunk: int or "auto")
    config.train.fold_chunk = fold_chunk
    config.train.progress = False
    with tempfile.TemporaryDirectory() as workdir:
        start, cpu = time.perf_counter(), time.process_time()
        experiment.train_and_evaluate(config, workdir)
        return time.perf_counter() - start, time.process_time() - cpu


def _net_config(name: str):
    """The default config of network `name` (configs/<name>.py)."""
    import importlib

    from mer_jax.models import registry

    if name not in registry.MODELS:
        raise app.UsageError(f"--net must be one of {sorted(registry.MODELS)}, got {name!r}")
    return importlib.import_module(f"configs.{name}").get_config()


def _model_parts(config, num_classes: int = 3):
    """(per-sample input shapes, make_model(rngs)) of the config's network, built from `config.model`."""
    from mer_jax.models import registry

    name = config.model.name
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    make_model = lambda rngs: registry.create_model(name, num_classes, rngs=rngs, **kwargs)
    return registry.input_shapes(name, **kwargs), make_model


def bench_loso(config) -> None:
    import jax

    from mer_jax import experiment

    corpus = experiment.load_inputs(config)[0]   # builds the corpus and caches features before timing
    num_folds = experiment.make_plan(config, corpus).num_folds
    together, together_cpu = _time_loso(config, 0)
    sequential, sequential_cpu = _time_loso(config, 1)
    print(f"folds: {num_folds}, epochs: {config.train.num_epochs}, corpus: {config.dataset.name}, "
          f"device: {jax.devices()[0].device_kind} x {jax.device_count()}, fold_conv: {config.train.fold_conv}")
    print(f"fold_chunk=all ({num_folds} folds vmapped): {together:.1f} s wall, {together_cpu:.1f} s CPU")
    print(f"fold_chunk=1 (one fold at a time): {sequential:.1f} s wall, {sequential_cpu:.1f} s CPU")
    print(f"ratio sequential/all (CPU time): {sequential_cpu / together_cpu:.2f}")
    print(f"ratio sequential/all (wall): {sequential / together:.2f}")


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


def _median_seconds(run, repeats: int) -> float:
    """Median wall time of `run()` (which blocks until done) over `repeats` calls, after one warm-up call."""
    import numpy as np

    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _model_row(name: str, latency_repeats: int = 50, train_repeats: int = 10) -> dict:
    """Figures of one registered network, built as configs/<name>.py builds it, for 3 classes."""
    import importlib

    import jax
    import jax.numpy as jnp
    from flax import nnx

    from mer_jax.data.augment import AugmentConfig
    from mer_jax.models import complexity
    from mer_jax.models.paper_figures import PAPER_FIGURES
    from mer_jax.train import state as train_state
    from mer_jax.train import trainer
    from mer_jax.train.step import fold_values, train_step

    config = _net_config(name)
    size, batch = config.model.input_size, config.train.batch_size
    shapes, make_model = _model_parts(config)
    keys = tuple(shapes)
    model = make_model(nnx.Rngs(0))
    one = {k: jax.random.uniform(jax.random.key(i), (1,) + shapes[k]) for i, k in enumerate(keys)}
    graphdef, model_state = nnx.split(model)
    forward = jax.jit(lambda state, inputs: nnx.merge(graphdef, state)(inputs, train=False))
    latency = _median_seconds(lambda: forward(model_state, one).block_until_ready(), latency_repeats)

    tx = trainer._optimizer(config.train, 1000 // max(config.train.num_epochs, 1))
    fold_state = jax.tree.map(lambda x: x[0], train_state.init_fold_states(make_model, tx, train_state.fold_keys(0, [0])))
    data = {k: jax.random.uniform(jax.random.key(i), (batch,) + shapes[k]) for i, k in enumerate(keys)}
    data["label"] = jnp.arange(batch) % 3
    # The batch is an argument, not a closed-over constant XLA would try to fold (slow for video inputs).
    step = jax.jit(lambda s, data: train_step(s, data, jnp.arange(batch), jnp.zeros(batch, jnp.int32),
                                        fold_values(jnp.ones(3), jnp.asarray(True)), jax.random.key(1),
                                        graphdef=train_state.model_graphdef(make_model), tx=tx,
                                        loss_fn=trainer._loss_fn(config.train), input_keys=keys, flow_keys=(),
                                        augment=AugmentConfig(variants=1))[0])
    holder = [fold_state]

    def train_once():
        holder[0] = step(holder[0], data)
        jax.block_until_ready(holder[0])

    step_seconds = _median_seconds(train_once, train_repeats)
    paper = PAPER_FIGURES.get(name)
    # A network whose paper gives a complexity formula evaluates it in its module (MADV-Net: Eq. 24-25).
    formula = getattr(importlib.import_module(type(model).__module__), "complexity_terms", None)
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    return {"name": name, "params": complexity.count_params(model), "flops": complexity.flops_per_sample(model, one),
            "paper": paper, "latency_ms": latency * 1e3, "train_samples_per_s": batch / step_seconds,
            "batch": batch, "input": f"{size}x{size}", "formula": formula and formula(3, **kwargs)}


def _models_table(rows: list[dict], device: str) -> str:
    figure = lambda x, unit: "-" if x is None else f"{x / unit:.3g}"
    lines = [f"Device: {device}. FLOPs: XLA's count of the lowered eval-mode call at batch 1 "
             "(mer_jax/models/complexity.py); latency: median of 50 jitted batch-1 calls; training: median of "
             "10 jitted train steps (AdamW, no augmentation).", "",
             "| network | input | params (M) | paper params (M) | FLOPs (M) | paper FLOPs (M) | paper source | "
             "batch-1 latency (ms) | paper CPU latency (ms) | train samples/s (batch) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        paper = r["paper"]
        lines.append(f"| {r['name']} | {r['input']} | {r['params'] / 1e6:.4g} | {figure(paper and paper.params, 1e6)} | "
                     f"{r['flops'] / 1e6:.4g} | {figure(paper and paper.flops, 1e6)} | {paper.source if paper else '-'} | "
                     f"{r['latency_ms']:.2f} | {figure(paper and paper.cpu_latency_ms, 1)} | "
                     f"{r['train_samples_per_s']:.3g} ({r['batch']}) |")
    formulas = [r for r in rows if r["formula"]]
    if formulas:
        lines += ["", "Papers' complexity formulas against XLA (multiplies per sample, M; XLA's FLOPs count a "
                  "multiply-add as 2):", "",
                  "| network | paper formula | + products it leaves out | XLA FLOPs / 2 | XLA / (2 x formula) | "
                  "XLA / (2 x (formula + left out)) |", "|---|---|---|---|---|---|"]
        for r in formulas:
            paper, left_out = r["formula"]["paper"], r["formula"]["omitted"]
            lines.append(f"| {r['name']} | {paper / 1e6:.5g} | {left_out / 1e6:.4g} | {r['flops'] / 2e6:.5g} | "
                         f"{r['flops'] / (2 * paper):.3f} | {r['flops'] / (2 * (paper + left_out)):.3f} |")
    return "\n".join(lines)


_MODELS_BEGIN, _MODELS_END = "<!-- bench models: begin -->", "<!-- bench models: end -->"


def bench_models(write_docs: bool, names: list[str] | None = None) -> None:
    """The models table (every registered network, or `names`); `write_docs` (all networks only) writes it
    into docs/benchmarks.md."""
    import jax

    from mer_jax.models import registry

    if write_docs and names:
        raise app.UsageError("models --write_docs writes the table of every network; drop --net")
    device = f"{jax.devices()[0].device_kind} ({jax.default_backend()})"
    table = _models_table([_model_row(name) for name in (names or sorted(registry.MODELS))], device)
    print(table)
    if write_docs:
        from pathlib import Path

        path = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
        text = path.read_text()
        if _MODELS_BEGIN in text:
            head, rest = text.split(_MODELS_BEGIN)
            text = head + _MODELS_BEGIN + "\n" + table + "\n" + _MODELS_END + rest.split(_MODELS_END, 1)[1]
        else:
            text += (f"\n## Networks (`python -m mer_jax.bench models --write_docs`)\n\n{_MODELS_BEGIN}\n{table}\n"
                     f"{_MODELS_END}\n")
        path.write_text(text)
        print(f"written to {path}")


def bench_memory(config, num_folds: int, num_samples: int, device_gib: float) -> None:
    """Per-fold and shared memory of the config's train and predict steps (XLA's buffer assignment for
    this backend, at the config's batch sizes), with and without `model.remat`, and the folds per chunk
    that `train.fold_chunk=auto` would choose on a device with `device_gib` free."""
    import numpy as np

    from mer_jax.data import folds
    from mer_jax.train import fold_memory, trainer

    name = config.model.name
    print(f"{name}: batch {config.train.batch_size}, eval batch {config.train.eval_batch_size}, "
          f"{num_folds} folds, {num_samples} samples, compute {config.train.compute_dtype}")
    for remat in (False, True):
        config = copy.deepcopy(config)   # keeps the field types (fold_chunk: int or "auto")
        config.model.remat = remat
        config.train.fold_chunk = 1
        shapes, make_model = _model_parts(config)
        # One sample per subject: the steps gather their batch by id, so only the shared bytes depend on
        # the corpus size, and those are scaled to num_samples below.
        data = {k: np.zeros((num_folds,) + shape, np.float32) for k, shape in shapes.items()}
        data["label"] = np.arange(num_folds) % 3
        run = trainer._Run(config=config, workdir=None, data=data, plan=folds.loso([f"s{i}" for i in range(num_folds)]),
                           make_model=make_model, input_keys=tuple(shapes), flow_keys=(), num_classes=3, score_fn=None)
        estimate = run._fold_memory(run.mesh.shape["fold"])
        shared = fold_memory.tree_bytes(data) * num_samples // num_folds
        memory = dataclasses.replace(estimate, free=int(device_gib * 2**30), fixed=shared)
        per_device = memory.folds_per_device(config.train.memory_fraction)
        chunks = -(-num_folds // per_device) if per_device > 0 else None
        gib = lambda b: f"{b / 2**30:.2f}"
        print(f"remat={remat}: per fold {gib(memory.per_fold)} GiB (state {gib(memory.state)}, train-step "
              f"temporaries {gib(memory.train_temp)}, predict-step temporaries {gib(memory.predict_temp)}); "
              f"shared features {gib(shared)} GiB; on {device_gib:g} GiB x {config.train.memory_fraction}: "
              f"{per_device} folds at once, {chunks} chunk(s) for {num_folds} folds")


def bench_fold_step(config, fold_counts: list[int], repeats: int = 5) -> None:
    """Per-fold time of the config's train step with F folds vmapped, for each `train.fold_conv` strategy."""
    import jax
    import jax.numpy as jnp

    from mer_jax.data.augment import AugmentConfig
    from mer_jax.models import fold_conv
    from mer_jax.train import state as train_state
    from mer_jax.train import trainer
    from mer_jax.train.step import fold_parallel, fold_values, train_step

    name, batch = config.model.name, config.train.batch_size
    shapes, make_model = _model_parts(config)
    tx = trainer._optimizer(config.train, 10)
    augment = AugmentConfig(**config.augment)
    data = {k: jax.random.uniform(jax.random.key(i), (batch,) + shapes[k]) for i, k in enumerate(shapes)}
    data["label"] = jnp.arange(batch) % 3
    print(f"{name}: train step at batch {batch}, {jax.devices()[0].device_kind}; per fold-step wall / process CPU ms")
    for strategy in ("grouped", "loop"):
        for folds in fold_counts:
            state = train_state.init_fold_states(make_model, tx, train_state.fold_keys(0, list(range(folds))))
            ids = jnp.tile(jnp.arange(batch), (folds, 1))
            args = (data, ids, jnp.zeros_like(ids), fold_values(jnp.ones((folds, 3)), jnp.ones(folds, bool)),
                    jax.random.key(1))
            step = jax.jit(fold_conv.traced_with(strategy, fold_parallel(
                train_step, graphdef=train_state.model_graphdef(make_model), tx=tx,
                loss_fn=trainer._loss_fn(config.train), input_keys=tuple(shapes), flow_keys=(),
                augment=augment)), donate_argnums=0)
            start = time.perf_counter()
            compiled = step.lower(state, *args).compile()
            compile_s = time.perf_counter() - start
            state, _ = compiled(state, *args)
            jax.block_until_ready(state)
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(repeats):
                state, _ = compiled(state, *args)
            jax.block_until_ready(state)
            wall, cpu = (time.perf_counter() - start) / repeats / folds, (time.process_time() - cpu) / repeats / folds
            print(f"fold_conv={strategy:7s} F={folds:2d}: {wall * 1e3:7.1f} ms wall, {cpu * 1e3:7.1f} ms CPU per "
                  f"fold-step; compile {compile_s:.1f} s")


def main(argv) -> None:
    usage = ("usage: python -m mer_jax.bench loso --net NET | --config CONFIG | python -m mer_jax.bench models [--write_docs | --net NET] | "
             "python -m mer_jax.bench tvl1 [--sizes ...] | python -m mer_jax.bench memory --net NET [--num_folds ...] | "
             "python -m mer_jax.bench fold_step --net NET [--folds=1,4,12]")
    if len(argv) != 2 or argv[1] not in {"loso", "models", "tvl1", "memory", "fold_step"}:
        raise app.UsageError(usage)
    if argv[1] == "models":
        bench_models(_WRITE_DOCS.value, [_NET.value] if _NET.value else None)
    elif argv[1] == "tvl1":
        bench_tvl1([int(s) for s in _SIZES.value], [int(b) for b in _BATCHES.value], _PAIRS_PER_STEP.value)
    elif (_CONFIG.value is None) == (_NET.value is None):
        raise app.UsageError(f"{argv[1]} needs exactly one of --net and --config")
    else:
        config = _CONFIG.value if _NET.value is None else _net_config(_NET.value)
        if argv[1] == "fold_step":
            bench_fold_step(config, [int(f) for f in _FOLDS.value])
        elif argv[1] == "memory":
            bench_memory(config, _NUM_FOLDS.value, _NUM_SAMPLES.value, _DEVICE_GIB.value)
        else:
            bench_loso(config)


if __name__ == "__main__":
    app.run(main)
