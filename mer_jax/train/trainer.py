"""The fold-parallel trainer: all folds of a plan trained at once, `fold_chunk` folds at a time.

Every fold has its own model, BatchNorm statistics, optimizer state, seeded batch plan (drawn only
from its training subjects) and loss weighting; `jax.jit(jax.vmap(step))` updates the folds of a
chunk together, with folds sharded over the mesh axis 'fold' and each batch over 'data'.
`fold_chunk` bounds memory: 1 trains the folds one after another through the same code.
`compute_dtype` "bfloat16" runs the networks in bfloat16 with float32 parameters, BatchNorm
statistics and optimizer state (models/precision.py).

Model selection, applied per fold:
  last           the model after the last epoch (default; honest)
  val            the eval epoch with the best score on validation subjects drawn from the fold's own
                 training subjects (honest)
  test_selected  the eval epoch with the best score on the fold's held-out test subject. This leaks
                 the test labels into the result; it exists only to reproduce published numbers and
                 its results are labelled `test_selected` everywhere.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from mer_jax.data.augment import AugmentConfig
from mer_jax.data.folds import FoldPlan
from mer_jax.models import fold_conv
from mer_jax.models.precision import with_compute_dtype
from mer_jax.train import fold_memory, losses, sampling, sharding
from mer_jax.train.checkpointing import ChunkCheckpointer
from mer_jax.train.distributed import to_host
from mer_jax.train.state import fold_keys, init_fold_states, model_graphdef
from mer_jax.train.step import fold_parallel, predict, train_step

log = logging.getLogger(__name__)

SELECTIONS = ("last", "val", "test_selected")


@dataclasses.dataclass
class TrainResult:
    """Held-out predictions of every fold at its selected epoch, and the training history."""
    test_probs: np.ndarray        # float [N, K]: each sample predicted by the fold that tests it
    test_fold: np.ndarray         # int [N]: index of that fold in the plan
    selected_epoch: np.ndarray    # int [F]: epochs completed when the reported model was taken
    history: dict                 # epoch, train_loss [E, F], train_accuracy [E, F], eval_epoch,
                                  # test_probs [E_eval, N, K], val_score [E_eval, F] (val selection)
    selection: str
    wall_time_s: float
    interrupted: bool = False     # stopped by `stop_after_epochs`; resume by running again


def _schedule(cfg, steps_per_epoch: int):
    """Learning rate per step: cosine decay to 0 over the run (M3ENet section 4.1.4), linear warm-up for
    `warmup_epochs` then cosine decay to 0 (EDMDBN section 4.3: 15 warm-up epochs of 60), or constant."""
    total = max(steps_per_epoch * cfg.num_epochs, 1)
    if cfg.schedule == "cosine":
        return optax.cosine_decay_schedule(cfg.learning_rate, decay_steps=total)
    if cfg.schedule == "warmup_cosine":
        warmup = steps_per_epoch * cfg.warmup_epochs
        if not 0 <= warmup < total:
            raise ValueError(f"train.warmup_epochs={cfg.warmup_epochs} must be in [0, train.num_epochs)")
        return optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, warmup_steps=warmup, decay_steps=total)
    if cfg.schedule == "constant":
        return cfg.learning_rate
    raise ValueError(f"train.schedule must be 'cosine', 'warmup_cosine' or 'constant', got {cfg.schedule!r}")


def _optimizer(cfg, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW with `_schedule`; `weight_decay_on` = all (every parameter) or matrices (not biases, norms
    and other 1-D parameters, as EDMDBN's public code excludes them)."""
    on = cfg.weight_decay_on
    if on not in ("all", "matrices"):
        raise ValueError(f"train.weight_decay_on must be 'all' or 'matrices', got {on!r}")
    mask = None if on == "all" else (lambda params: jax.tree.map(lambda p: p.ndim > 1, params))
    return optax.adamw(_schedule(cfg, steps_per_epoch), b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay,
                       mask=mask)


def _loss_fn(cfg) -> Callable:
    """loss(logits, labels, class_weights): `class_weights` [K] come from `train.class_weights`."""
    if cfg.loss == "focal":
        return lambda logits, labels, alpha: losses.focal_loss(logits, labels, alpha, gamma=cfg.focal_gamma)
    if cfg.loss == "cross_entropy":
        return lambda logits, labels, alpha: losses.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing,
                                                                  class_weights=alpha)
    raise ValueError(f"train.loss must be 'focal' or 'cross_entropy', got {cfg.loss!r}")


def _check_fold_chunk(fold_chunk) -> None:
    if fold_chunk == "auto" or (isinstance(fold_chunk, int) and not isinstance(fold_chunk, bool) and fold_chunk >= 0):
        return
    raise ValueError(f"train.fold_chunk must be 'auto' (sized from device memory), 0 (all folds at once) or a "
                     f"positive number of folds, got {fold_chunk!r}")


def _one_fold_keys() -> jax.ShapeDtypeStruct:
    """Shape and dtype of one fold's PRNG keys (as `fold_keys` makes them)."""
    return jax.ShapeDtypeStruct((1,), jax.eval_shape(lambda: jax.random.key(0)).dtype)


def _where_folds(mask, new, old):
    """Per fold (leading axis), `new` where mask else `old`."""
    return jax.tree.map(lambda n, o: jnp.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


class _Run:
    """What every chunk of one run shares: config, data on device, compiled steps, batch plan."""

    def __init__(self, *, config, workdir, data, plan, make_model, input_keys, flow_keys, num_classes,
                 score_fn):
        tc = config.train
        if tc.selection not in SELECTIONS:
            raise ValueError(f"train.selection must be one of {SELECTIONS}, got {tc.selection!r}")
        if tc.class_weights not in losses.CLASS_WEIGHTS:
            raise ValueError(f"train.class_weights must be one of {sorted(losses.CLASS_WEIGHTS)}, "
                             f"got {tc.class_weights!r}")
        if tc.selection == "val" and not plan.val.any():
            raise ValueError("train.selection='val' needs a fold plan with validation subjects "
                             "(set train.num_val_subjects >= 1)")
        self.config, self.tc, self.workdir, self.plan = config, tc, workdir, plan
        self.labels = np.asarray(data["label"])
        self.num_classes, self.score_fn = num_classes, score_fn
        self.mesh = sharding.make_mesh(config.mesh.fold_devices, config.mesh.data_devices)
        fold_dev = self.mesh.shape["fold"]
        if tc.batch_size % self.mesh.shape["data"]:
            raise ValueError(f"train.batch_size={tc.batch_size} must be a multiple of mesh.data_devices")
        _check_fold_chunk(tc.fold_chunk)
        self.augment = AugmentConfig(**config.augment)
        self.steps = sampling.steps_per_epoch(plan.train, self.augment.variants, tc.batch_size)
        self.tx = _optimizer(tc, self.steps)
        self.data = jax.device_put({k: jnp.asarray(v) for k, v in data.items()}, sharding.replicated(self.mesh))
        self.aug_key = jax.random.key(config.seed + 1)
        make_model = with_compute_dtype(make_model, tc.compute_dtype)
        graphdef = model_graphdef(make_model)
        init = functools.partial(init_fold_states, make_model, self.tx)
        # One fold's state as shapes (nothing allocated): every leaf gets an explicit fold sharding.
        self.fold_state = jax.eval_shape(init, _one_fold_keys())
        self.state_shardings = jax.tree.map(lambda _: sharding.fold_sharded(self.mesh), self.fold_state)
        self.init_fn = jax.jit(init, out_shardings=self.state_shardings)
        self.init_compiled = None
        # Convolutions of the vmapped folds are lowered as `train.fold_conv` says (models/fold_conv.py).
        self.step_fn = jax.jit(fold_conv.traced_with(tc.fold_conv, fold_parallel(
            train_step, graphdef=graphdef, tx=self.tx, loss_fn=_loss_fn(tc), input_keys=tuple(input_keys),
            flow_keys=tuple(flow_keys), augment=self.augment)), donate_argnums=0)
        self.predict_fn = jax.jit(fold_conv.traced_with(tc.fold_conv, fold_parallel(
            predict, graphdef=graphdef, input_keys=tuple(input_keys))))
        self.epochs_this_process = 0
        chunk = self._folds_per_chunk(fold_dev)
        self.chunk_size = math.ceil(chunk / fold_dev) * fold_dev   # padded to the fold devices
        self.chunks = [list(range(s, min(s + chunk, plan.num_folds))) for s in range(0, plan.num_folds, chunk)]

    def _folds_per_chunk(self, fold_dev: int) -> int:
        num_folds, fold_chunk = self.plan.num_folds, self.tc.fold_chunk
        if fold_chunk != "auto":
            return num_folds if fold_chunk == 0 else min(fold_chunk, num_folds)
        per_device = fold_memory.agreed_folds_per_device(self._fold_memory(fold_dev), self.tc.memory_fraction)
        if per_device < 1:
            raise MemoryError(f"train.fold_chunk='auto': one fold of {self.config.model.name} does not fit the "
                              f"memory of a device at train.batch_size={self.tc.batch_size} "
                              f"(train.memory_fraction={self.tc.memory_fraction}); lower the batch size or "
                              "use more data devices")
        return min(per_device * fold_dev, num_folds)

    def _fold_memory(self, fold_dev: int) -> fold_memory.FoldMemory:
        """Memory estimate from the train and predict steps compiled for one fold per fold device."""
        state = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct((fold_dev,) + s.shape[1:], s.dtype, sharding=sh),
                             self.fold_state, self.state_shardings)
        folds, batch = sharding.fold_sharded(self.mesh), sharding.fold_batch_sharded(self.mesh)
        ids = jax.ShapeDtypeStruct((fold_dev, self.tc.batch_size), jnp.int32, sharding=batch)
        alpha = jax.ShapeDtypeStruct((fold_dev, self.num_classes), jnp.float32, sharding=folds)
        eval_ids = jax.ShapeDtypeStruct((fold_dev, self.tc.eval_batch_size), jnp.int32, sharding=folds)
        train = self.step_fn.lower(state, self.data, ids, ids, alpha, self.aug_key).compile()
        predict = self.predict_fn.lower(state["params"], state["batch_stats"], self.data, eval_ids).compile()
        kept = fold_memory.tree_bytes(self.fold_state)
        if self.tc.selection != "last":   # the selected model's copy
            kept += fold_memory.tree_bytes({k: self.fold_state[k] for k in ("params", "batch_stats")})
        local = [d for d in self.mesh.devices.flat if d.process_index == jax.process_index()]
        return fold_memory.estimate(train_compiled=train, predict_compiled=predict, fold_state_bytes=kept,
                                    shared_bytes=fold_memory.tree_bytes(self.data), devices=local)

    def put_folds(self, x, batch: bool = False):
        spec = sharding.fold_batch_sharded(self.mesh) if batch else sharding.fold_sharded(self.mesh)
        return jax.device_put(x, spec)

    def init_state(self, fold_ids):
        keys = fold_keys(self.config.seed, np.asarray(fold_ids))
        if self.init_compiled is None:
            # Compiled once (every chunk has the same padded size) without backend optimisation: the
            # init graph is large (one threefry expansion per parameter) and runs once per chunk, so
            # optimising it costs ~4x more compile time than it saves.
            self.init_compiled = self.init_fn.lower(keys).compile(
                compiler_options={"xla_backend_optimization_level": 0})
        train = self.init_compiled(keys)
        if self.tc.selection == "last":
            return {"train": train}
        # The model kept by the selection rule; a copy, since the train state is donated every step.
        return {"train": train, "selected": jax.tree.map(jnp.copy, {"params": train["params"],
                                                                     "batch_stats": train["batch_stats"]})}

    def predict_folds(self, model_state, masks):
        """Per-fold probability lists for the samples of each row of `masks` [F, N]."""
        ids, valid = sampling.eval_indices(masks)
        width = self.tc.eval_batch_size
        parts = []
        for start in range(0, ids.shape[1], width):
            block = ids[:, start:start + width]
            parts.append(np.asarray(to_host(self.predict_fn(model_state["params"], model_state["batch_stats"],
                                                            self.data, self.put_folds(block)))))
        probs = np.concatenate(parts, axis=1)
        return [probs[f][valid[f]] for f in range(len(masks))]


def _train_chunk(run: _Run, chunk_index: int, fold_ids: list[int]) -> tuple[dict, bool]:
    """Train the folds `fold_ids` (resuming from their checkpoint); returns (meta, interrupted)."""
    tc, plan = run.tc, run.plan
    real = len(fold_ids)
    padded = fold_ids + [fold_ids[-1]] * (run.chunk_size - real)
    train_masks, test_masks, val_masks = plan.train[padded], plan.test[padded], plan.val[padded]
    checkpointer = ChunkCheckpointer(run.workdir, chunk_index)
    if checkpointer.latest_epoch() is not None and checkpointer.latest_epoch() >= tc.num_epochs:
        meta = checkpointer.restore_meta()
        checkpointer.close()
        return meta, False
    state = run.init_state(padded)
    meta = {"fold_ids": fold_ids, "epoch": 0, "train_loss": [], "train_accuracy": [], "eval_epoch": [],
            "test_probs": [], "val_score": [], "best_score": [None] * real, "selected_epoch": [0] * real,
            "selected_test_probs": [None] * real}
    if checkpointer.latest_epoch() is not None:
        state, meta = checkpointer.restore(state)
        log.info("chunk %d: resumed from epoch %d", chunk_index, meta["epoch"])
    weigh = losses.CLASS_WEIGHTS[tc.class_weights]
    alpha = run.put_folds(np.stack([weigh(run.labels[m], run.num_classes) for m in train_masks]).astype(np.float32))
    bar = tqdm(range(meta["epoch"], tc.num_epochs), desc=f"folds {fold_ids[0]}-{fold_ids[-1]}",
               initial=meta["epoch"], total=tc.num_epochs, disable=not tc.progress)
    interrupted = False
    for epoch in bar:
        t0 = time.perf_counter()
        plans = [sampling.epoch_batches(m, f, epoch, seed=run.config.seed, variants=run.augment.variants,
                                        batch_size=tc.batch_size, num_steps=run.steps)
                 for m, f in zip(train_masks, padded)]
        ids, variants = np.stack([p[0] for p in plans]), np.stack([p[1] for p in plans])
        totals = None
        for s in range(run.steps):
            state["train"], metrics = run.step_fn(state["train"], run.data, run.put_folds(ids[:, s], batch=True),
                                                  run.put_folds(variants[:, s], batch=True), alpha, run.aug_key)
            totals = metrics if totals is None else totals.merge(metrics)
        computed = to_host(jax.vmap(lambda m: m.compute())(totals))
        loss, acc = np.asarray(computed["loss"])[:real], np.asarray(computed["accuracy"])[:real]
        if not np.all(np.isfinite(loss)):
            raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1} in folds "
                                     f"{[plan.names[f] for f in fold_ids]}: {loss}")
        meta["train_loss"].append(loss.tolist())
        meta["train_accuracy"].append(acc.tolist())
        done = epoch + 1
        bar.set_postfix(loss=f"{loss.mean():.3f}", acc=f"{acc.mean():.3f}",
                        steps_per_s=f"{run.steps / (time.perf_counter() - t0):.2f}")
        if done % tc.eval_every_epochs == 0 or done == tc.num_epochs:
            _evaluate(run, state, meta, done, test_masks, val_masks, real)
        meta["epoch"] = done
        run.epochs_this_process += 1
        stop = bool(tc.stop_after_epochs) and run.epochs_this_process >= tc.stop_after_epochs
        if done % tc.checkpoint_every_epochs == 0 or done == tc.num_epochs or stop:
            checkpointer.save(done, state, meta)
        if stop and done < tc.num_epochs:
            interrupted = True
            break
    bar.close()
    checkpointer.close()
    return meta, interrupted


def _evaluate(run: _Run, state, meta: dict, done: int, test_masks, val_masks, real: int) -> None:
    """Held-out predictions at this epoch, and the selection rule's bookkeeping."""
    test = run.predict_folds(state["train"], test_masks)[:real]
    meta["eval_epoch"].append(done)
    meta["test_probs"].append([p.tolist() for p in test])
    selection = run.tc.selection
    if selection == "last":
        meta["selected_epoch"] = [done] * real
        meta["selected_test_probs"] = [p.tolist() for p in test]
        return
    if selection == "val":
        scored = run.predict_folds(state["train"], val_masks)[:real]
        masks = val_masks
    else:
        scored, masks = test, test_masks
    scores = [run.score_fn(run.labels[m], p.argmax(-1)) for m, p in zip(masks, scored)]
    if selection == "val":
        meta["val_score"].append(scores)
    improved = np.zeros(run.chunk_size, bool)
    for f, score in enumerate(scores):
        if meta["best_score"][f] is None or score > meta["best_score"][f]:
            improved[f] = True
            meta["best_score"][f], meta["selected_epoch"][f] = score, done
            meta["selected_test_probs"][f] = test[f].tolist()
    model = {"params": state["train"]["params"], "batch_stats": state["train"]["batch_stats"]}
    state["selected"] = _where_folds(run.put_folds(improved), model, state["selected"])


def train_folds(*, config, workdir, data: dict, plan: FoldPlan, make_model: Callable[[nnx.Rngs], nnx.Module],
                input_keys, flow_keys=(), num_classes: int, score_fn: Callable) -> TrainResult:
    """Train every fold of `plan` on `data` ({input arrays [N, ...], 'label' [N]}) and predict its
    test samples. `score_fn(labels, preds) -> float` ranks epochs for the val / test_selected rules.
    Resumes from checkpoints in `workdir`."""
    if not np.array_equal(plan.test.sum(0), np.ones(plan.test.shape[1])):
        raise ValueError("every sample must be tested by exactly one fold (LOSO, LODO and k-fold plans are)")
    start = time.perf_counter()
    run = _Run(config=config, workdir=workdir, data=data, plan=plan, make_model=make_model,
               input_keys=input_keys, flow_keys=flow_keys, num_classes=num_classes, score_fn=score_fn)
    log.info("training %d folds in %d chunk(s) of %d on mesh %s, %d steps/epoch",
                 plan.num_folds, len(run.chunks), run.chunk_size, dict(run.mesh.shape), run.steps)
    metas = []
    with jax.set_mesh(run.mesh):
        for c, fold_ids in enumerate(run.chunks):
            meta, interrupted = _train_chunk(run, c, fold_ids)
            metas.append(meta)
            if interrupted:
                break
    return _assemble(run, metas, interrupted, time.perf_counter() - start)


def _assemble(run: _Run, metas: list[dict], interrupted: bool, wall: float) -> TrainResult:
    plan, n, k = run.plan, run.plan.test.shape[1], run.num_classes
    test_probs = np.full((n, k), np.nan, np.float32)
    test_fold = plan.test.argmax(0)
    selected = np.zeros(plan.num_folds, int)
    eval_epochs = metas[0]["eval_epoch"]
    history_probs = np.full((len(eval_epochs), n, k), np.nan, np.float32)
    for meta in metas:
        for j, f in enumerate(meta["fold_ids"]):
            rows = np.flatnonzero(plan.test[f])
            selected[f] = meta["selected_epoch"][j]
            if meta["selected_test_probs"][j] is not None:
                test_probs[rows] = np.asarray(meta["selected_test_probs"][j])
            for e, per_fold in enumerate(meta["test_probs"][:len(eval_epochs)]):
                history_probs[e, rows] = np.asarray(per_fold[j])
    history = {
        "epoch": list(range(1, len(metas[0]["train_loss"]) + 1)),
        "train_loss": _stack_folds(metas, "train_loss"), "train_accuracy": _stack_folds(metas, "train_accuracy"),
        "eval_epoch": eval_epochs, "test_probs": history_probs,
        "val_score": _stack_folds(metas, "val_score") if run.tc.selection == "val" else None,
    }
    return TrainResult(test_probs=test_probs, test_fold=test_fold, selected_epoch=selected, history=history,
                       selection=run.tc.selection, wall_time_s=wall, interrupted=interrupted)


def _stack_folds(metas: list[dict], key: str) -> np.ndarray:
    """[E, F_done] from per-chunk lists [E][F_chunk], over the epochs every chunk reached."""
    epochs = min(len(m[key]) for m in metas)
    return np.concatenate([np.asarray(m[key][:epochs]).reshape(epochs, -1) for m in metas], axis=1)
