"""The fold-parallel trainer: all folds of a plan trained at once, `fold_chunk` folds at a time.

Every fold has its own model, BatchNorm statistics, optimizer state, seeded batch plan (drawn only
from its training subjects) and loss weighting; `jax.jit(jax.vmap(step))` updates the folds of a
chunk together, with folds sharded over the mesh axis 'fold' and each batch over 'data'.
`fold_chunk` bounds memory: 1 trains the folds one after another through the same code.
`compute_dtype` "bfloat16" runs the networks in bfloat16 with float32 parameters, BatchNorm
statistics and optimizer state (models/precision.py).

Model selection, applied per fold:
  last           the model after the last epoch (default; honest)
  val            the eval epoch with the best `val_metric` (uf1, or loss: mean cross-entropy) on
                 validation subjects drawn from the fold's own training subjects (honest)
  test_selected  the eval epoch with the best score on the fold's held-out test subject. This leaks
                 the test labels into the result; it exists only to reproduce published numbers and
                 its results are labelled `test_selected` everywhere.

Early stopping (`early_stopping_patience` > 0, with selection "val"; DFR-Net section 4.3 after
Prechelt [46]): a fold stops once `patience` epochs have passed since its best validation score. Folds
of a chunk train in one vmapped step, so a stopped fold is not removed: its updates are masked (the
step returns its state unchanged; train/step.py `fold_values`) while the others go on, and the chunk
ends when all its folds have stopped. Each fold reports the model of its best validation epoch; its
training loss is NaN after it stopped, and its held-out predictions at later eval epochs are those of
its frozen model.

`standardise_inputs` names inputs standardised per channel with the mean and std of each fold's
training samples (DFR-Net section 4.3: "normalized the input images using the dataset's mean and
standard deviation"; only the training subjects, so nothing of the held-out subject leaks in).
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
from mer_jax.features.normalise import channel_mean_std
from mer_jax.models import fold_conv
from mer_jax.models.precision import with_compute_dtype
from mer_jax.train import fold_memory, losses, sampling, sharding
from mer_jax.train.checkpointing import ChunkCheckpointer, load_fold_model
from mer_jax.train.distributed import to_host
from mer_jax.train.state import fold_keys, init_fold_states, model_graphdef
from mer_jax.train.step import fold_parallel, fold_values, predict, predict_adaptive, train_step

log = logging.getLogger(__name__)

SELECTIONS = ("last", "val", "test_selected")
VAL_METRICS = {"uf1": 1.0, "loss": -1.0}   # sign that makes a higher value better


@dataclasses.dataclass
class TrainResult:
    """Held-out predictions of every fold at its selected epoch, and the training history."""
    test_probs: np.ndarray        # float [N, K]: each sample predicted by the fold that tests it
    test_fold: np.ndarray         # int [N]: index of that fold in the plan
    selected_epoch: np.ndarray    # int [F]: epochs completed when the reported model was taken
    epochs_trained: np.ndarray    # int [F]: epochs a fold was updated for (< num_epochs: stopped early)
    history: dict                 # epoch, train_loss [E, F], train_accuracy [E, F], eval_epoch,
                                  # test_probs [E_eval, N, K], val_score [E_eval, F] (val selection,
                                  # in units of val_metric)
    selection: str
    wall_time_s: float
    interrupted: bool = False     # stopped by `stop_after_epochs`; resume by running again
    test_alpha: np.ndarray | None = None   # float [N]: the factor the adaptive loop kept per sample (adaptive runs)


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


@dataclasses.dataclass(frozen=True)
class Versions:
    """Inputs that hold several versions of every sample, [N, V, ...] (Adaptive DSTNet: the apex
    magnified at V factors, and the flow to each). Training draws (sample, version) pairs; predictions
    read version `eval_version`, or with `adaptive_threshold` > 0 run Algorithm 1 over the versions,
    version v being the factor `alphas[v]` (train/step.py predict_adaptive)."""
    keys: tuple[str, ...]
    eval_version: int = 0
    alphas: tuple[float, ...] = ()
    adaptive_threshold: float = 0.0


def _variants(data: dict, versions: Versions | None, augment: AugmentConfig) -> int:
    """Versions of every sample the training pools draw from: the [N, V, ...] arrays' V, or the
    augmentation variants."""
    if versions is None:
        return augment.variants
    variant_keys = versions.keys
    counts = {k: data[k].shape[1] for k in variant_keys}
    if len(set(counts.values())) != 1:
        raise ValueError(f"arrays with versions per sample must agree on their count, got {counts}")
    if augment.variants != 1:
        raise ValueError(f"the inputs {list(variant_keys)} already hold {counts} versions per sample; set "
                         "augment.variants = 1 (online augmentation still works)")
    count = next(iter(counts.values()))
    if not 0 <= versions.eval_version < count:
        raise ValueError(f"eval_version {versions.eval_version} is not one of the {count} versions of "
                         f"{list(variant_keys)}")
    if versions.adaptive_threshold and len(versions.alphas) != count:
        raise ValueError(f"adaptive prediction needs the factor of each of the {count} versions, got alphas "
                         f"{versions.alphas}")
    return count


def _predict_step(graphdef, input_keys: tuple, versions: Versions | None):
    """The per-fold prediction step: plain, on one version, or adaptive over the versions."""
    if versions is None:
        return functools.partial(predict, graphdef=graphdef, input_keys=input_keys)
    if versions.adaptive_threshold:
        return functools.partial(predict_adaptive, graphdef=graphdef, input_keys=input_keys,
                                 variant_keys=versions.keys, alphas=versions.alphas,
                                 threshold=versions.adaptive_threshold)
    return functools.partial(predict, graphdef=graphdef, input_keys=input_keys, variant_keys=versions.keys,
                             eval_variant=versions.eval_version)


def _one_fold_keys() -> jax.ShapeDtypeStruct:
    """Shape and dtype of one fold's PRNG keys (as `fold_keys` makes them)."""
    return jax.ShapeDtypeStruct((1,), jax.eval_shape(lambda: jax.random.key(0)).dtype)


def _where_folds(mask, new, old):
    """Per fold (leading axis), `new` where mask else `old`."""
    return jax.tree.map(lambda n, o: jnp.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


class _Run:
    """What every chunk of one run shares: config, data on device, compiled steps, batch plan."""

    def __init__(self, *, config, workdir, data, plan, make_model, input_keys, flow_keys, num_classes,
                 score_fn, versions: Versions | None = None):
        tc = config.train
        if tc.selection not in SELECTIONS:
            raise ValueError(f"train.selection must be one of {SELECTIONS}, got {tc.selection!r}")
        if tc.balance_per_class < 0:
            raise ValueError(f"train.balance_per_class must be 0 (off) or a number of training pairs per class, "
                             f"got {tc.balance_per_class}")
        if tc.class_weights not in losses.CLASS_WEIGHTS:
            raise ValueError(f"train.class_weights must be one of {sorted(losses.CLASS_WEIGHTS)}, "
                             f"got {tc.class_weights!r}")
        if tc.selection == "val" and not plan.val.any():
            raise ValueError("train.selection='val' needs a fold plan with validation subjects "
                             "(set train.num_val_subjects >= 1)")
        if tc.val_metric not in VAL_METRICS:
            raise ValueError(f"train.val_metric must be one of {list(VAL_METRICS)}, got {tc.val_metric!r}")
        if tc.early_stopping_patience < 0 or (tc.early_stopping_patience and tc.selection != "val"):
            raise ValueError(f"train.early_stopping_patience={tc.early_stopping_patience} must be 0 (off) or a "
                             "positive number of epochs with train.selection='val' (a fold stops on its "
                             "validation subjects, never on its test subject, and keeps its best epoch's model)")
        unknown = sorted(set(tc.standardise_inputs) - set(input_keys))
        if unknown:
            raise ValueError(f"train.standardise_inputs names {unknown}, which the model does not read; "
                             f"its inputs are {list(input_keys)}")
        self.config, self.tc, self.workdir, self.plan = config, tc, workdir, plan
        self.labels = np.asarray(data["label"])
        self.standardised = tuple(tc.standardise_inputs)
        self.num_classes, self.score_fn = num_classes, score_fn
        self.mesh = sharding.make_mesh(config.mesh.fold_devices, config.mesh.data_devices)
        fold_dev = self.mesh.shape["fold"]
        if tc.batch_size % self.mesh.shape["data"]:
            raise ValueError(f"train.batch_size={tc.batch_size} must be a multiple of mesh.data_devices")
        _check_fold_chunk(tc.fold_chunk)
        self.augment = AugmentConfig(**config.augment)
        self.variants = _variants(data, versions, self.augment)
        self.pools = [self._pool(f) for f in range(plan.num_folds)]
        self.steps = sampling.steps_per_epoch([len(p[0]) for p in self.pools], tc.batch_size)
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
        self.start_model = None
        if config.init.get("from_run"):
            # Another run's reported model of one fold: every fold here starts from its parameters and
            # BatchNorm statistics (a fresh optimizer); e.g. MADV-Net's SMIC pre-training.
            like = {"params": self.fold_state["params"], "batch_stats": self.fold_state["batch_stats"]}
            self.start_model, name = load_fold_model(config.init.from_run, like, config.init.get("from_fold"))
            log.info("every fold starts from fold %s of the run in %s", name, config.init.from_run)
        # Convolutions of the vmapped folds are lowered as `train.fold_conv` says (models/fold_conv.py).
        self.step_fn = jax.jit(fold_conv.traced_with(tc.fold_conv, fold_parallel(
            train_step, graphdef=graphdef, tx=self.tx, loss_fn=_loss_fn(tc), input_keys=tuple(input_keys),
            flow_keys=tuple(flow_keys), augment=self.augment, variant_keys=versions.keys if versions else (),
            mask_stopped=bool(tc.early_stopping_patience))), donate_argnums=0)
        self.predict_fn = jax.jit(fold_conv.traced_with(tc.fold_conv, fold_parallel(
            _predict_step(graphdef, tuple(input_keys), versions))))
        self.epochs_this_process = 0
        chunk = self._folds_per_chunk(fold_dev)
        self.chunk_size = math.ceil(chunk / fold_dev) * fold_dev   # padded to the fold devices
        self.chunks = [list(range(s, min(s + chunk, plan.num_folds))) for s in range(0, plan.num_folds, chunk)]

    def _pool(self, fold: int) -> sampling.Pool:
        """The fold's (sample, variant) training pairs: all of them, or `train.balance_per_class` per class."""
        per_class, mask = self.tc.balance_per_class, self.plan.train[fold]
        if not per_class:
            return sampling.full_pool(mask, self.variants)
        return sampling.balanced_pool(mask, self.labels, per_class, self.variants, seed=self.config.seed,
                                      fold_id=fold)

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
        values = self.fold_values_shapes(fold_dev)
        eval_ids = jax.ShapeDtypeStruct((fold_dev, self.tc.eval_batch_size), jnp.int32, sharding=folds)
        train = self.step_fn.lower(state, self.data, ids, ids, values, self.aug_key).compile()
        predict = self.predict_fn.lower(state["params"], state["batch_stats"], self.data, eval_ids,
                                        values["input_stats"]).compile()
        kept = fold_memory.tree_bytes(self.fold_state)
        if self.tc.selection != "last":   # the selected model's copy
            kept += fold_memory.tree_bytes({k: self.fold_state[k] for k in ("params", "batch_stats")})
        local = [d for d in self.mesh.devices.flat if d.process_index == jax.process_index()]
        return fold_memory.estimate(train_compiled=train, predict_compiled=predict, fold_state_bytes=kept,
                                    shared_bytes=fold_memory.tree_bytes(self.data), devices=local)

    def fold_values_shapes(self, num_folds: int) -> dict:
        """Shapes (fold-sharded) of the `fold_values` of `num_folds` folds, as `chunk_values` makes them."""
        spec = lambda shape, dtype: jax.ShapeDtypeStruct((num_folds,) + shape, dtype,
                                                        sharding=sharding.fold_sharded(self.mesh))
        channels = lambda k: spec(self.data[k].shape[-1:], jnp.float32)
        stats = {k: {"mean": channels(k), "std": channels(k)} for k in self.standardised}
        return fold_values(spec((self.num_classes,), jnp.float32), spec((), jnp.bool_), stats)

    def chunk_values(self, train_masks: np.ndarray, active: np.ndarray) -> dict:
        """`fold_values` of the folds whose training samples are the rows of `train_masks` [F, N]."""
        weigh = losses.CLASS_WEIGHTS[self.tc.class_weights]
        weights = np.stack([weigh(self.labels[m], self.num_classes) for m in train_masks]).astype(np.float32)
        stats = {}
        for k in self.standardised:
            mean, std = _fold_channel_stats(self.data[k], self.put_folds(train_masks.astype(np.float32)))
            stats[k] = {"mean": mean, "std": std}
        return fold_values(self.put_folds(weights), self.put_folds(active), stats)

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
        if self.start_model is not None:
            for part, start in self.start_model.items():
                train[part] = jax.tree.map(lambda x, y: jax.device_put(jnp.broadcast_to(y, x.shape), x.sharding),
                                           train[part], start)
        if self.tc.selection == "last":
            return {"train": train}
        # The model kept by the selection rule; a copy, since the train state is donated every step.
        return {"train": train, "selected": jax.tree.map(jnp.copy, {"params": train["params"],
                                                                     "batch_stats": train["batch_stats"]})}

    def predict_folds(self, model_state, masks, values):
        """(per-fold probabilities, per-fold adaptive factors or None) for the samples of each row of `masks`
        [F, N]; `values` are the chunk's `fold_values` (its input statistics). The factors are those the
        adaptive loop kept (`Versions.adaptive_threshold`)."""
        ids, valid = sampling.eval_indices(masks)
        width = self.tc.eval_batch_size
        parts = []
        for start in range(0, ids.shape[1], width):
            block = ids[:, start:start + width]
            out = self.predict_fn(model_state["params"], model_state["batch_stats"], self.data, self.put_folds(block),
                                  values["input_stats"])
            parts.append(tuple(np.asarray(to_host(x)) for x in (out if isinstance(out, tuple) else (out,))))
        outputs = [np.concatenate(column, axis=1) for column in zip(*parts)]
        per_fold = [[x[f][valid[f]] for f in range(len(masks))] for x in outputs]
        return per_fold[0], (per_fold[1] if len(per_fold) > 1 else None)


@jax.jit
def _fold_channel_stats(x, masks):
    """Per-fold channel mean and std [F, C] of x [N, ..., C] over the samples of each row of `masks`
    [F, N]; a channel with no spread gets std 1 (it is only centred)."""
    mean, std = jax.vmap(channel_mean_std, in_axes=(None, 0))(x, masks)
    return mean, jnp.where(std > 0, std, 1.0)


def _complete_old_meta(meta: dict, real: int) -> None:
    """Fields that checkpoints written by earlier versions lack: `stopped_epoch` (before early stopping) and
    `selected_test_alpha` (before the adaptive factor was kept)."""
    meta.setdefault("stopped_epoch", [None] * real)
    meta.setdefault("selected_test_alpha", [None] * real)


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
        _complete_old_meta(meta, real)
        return meta, False
    state = run.init_state(padded)
    meta = {"fold_ids": fold_ids, "epoch": 0, "train_loss": [], "train_accuracy": [], "eval_epoch": [],
            "test_probs": [], "val_score": [], "best_score": [None] * real, "selected_epoch": [0] * real,
            "selected_test_probs": [None] * real, "selected_test_alpha": [None] * real, "stopped_epoch": [None] * real}
    if checkpointer.latest_epoch() is not None:
        state, meta = checkpointer.restore(state)
        _complete_old_meta(meta, real)
        log.info("chunk %d: resumed from epoch %d", chunk_index, meta["epoch"])
    active = _active(meta["stopped_epoch"], run.chunk_size)
    values = run.chunk_values(train_masks, active)
    bar = tqdm(range(meta["epoch"], tc.num_epochs), desc=f"folds {fold_ids[0]}-{fold_ids[-1]}",
               initial=meta["epoch"], total=tc.num_epochs, disable=not tc.progress)
    interrupted = False
    for epoch in bar:
        t0 = time.perf_counter()
        plans = [sampling.epoch_batches(run.pools[f], f, epoch, seed=run.config.seed, batch_size=tc.batch_size,
                                        num_steps=run.steps) for f in padded]
        ids, variants = np.stack([p[0] for p in plans]), np.stack([p[1] for p in plans])
        totals = None
        for s in range(run.steps):
            state["train"], metrics = run.step_fn(state["train"], run.data, run.put_folds(ids[:, s], batch=True),
                                                  run.put_folds(variants[:, s], batch=True), values, run.aug_key)
            totals = metrics if totals is None else totals.merge(metrics)
        computed = to_host(jax.vmap(lambda m: m.compute())(totals))
        stopped = ~active[:real]
        loss = np.where(stopped, np.nan, np.asarray(computed["loss"])[:real])
        acc = np.where(stopped, np.nan, np.asarray(computed["accuracy"])[:real])
        if not np.all(np.isfinite(loss[~stopped])):
            raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1} in folds "
                                     f"{[plan.names[f] for f in fold_ids]}: {loss}")
        meta["train_loss"].append(loss.tolist())
        meta["train_accuracy"].append(acc.tolist())
        done = epoch + 1
        bar.set_postfix(loss=f"{np.nanmean(loss):.3f}", acc=f"{np.nanmean(acc):.3f}",
                        steps_per_s=f"{run.steps / (time.perf_counter() - t0):.2f}")
        if done % tc.eval_every_epochs == 0 or done == tc.num_epochs:
            _evaluate(run, state, meta, done, test_masks, val_masks, real, values)
            if _stop_folds(run, meta, done, fold_ids):
                active = _active(meta["stopped_epoch"], run.chunk_size)
                values = {**values, "active": run.put_folds(active)}
        if not active.any():
            done = _finish_stopped_chunk(run, meta, done, real)
        meta["epoch"] = done
        run.epochs_this_process += 1
        stop = bool(tc.stop_after_epochs) and run.epochs_this_process >= tc.stop_after_epochs
        if done % tc.checkpoint_every_epochs == 0 or done == tc.num_epochs or stop:
            checkpointer.save(done, state, meta)
        if done >= tc.num_epochs:
            break
        if stop:
            interrupted = True
            break
    bar.close()
    checkpointer.close()
    return meta, interrupted


def _active(stopped_epoch: list, chunk_size: int) -> np.ndarray:
    """bool [chunk_size]: the folds still training (padding folds follow the last real fold)."""
    active = np.array([e is None for e in stopped_epoch])
    return np.concatenate([active, np.full(chunk_size - len(active), active[-1])])


def _stop_folds(run: _Run, meta: dict, done: int, fold_ids: list[int]) -> bool:
    """Mark the folds whose best validation epoch is `early_stopping_patience` or more epochs back as
    stopped at `done`; True if any fold stopped now."""
    patience = run.tc.early_stopping_patience
    if not patience:
        return False
    newly = [f for f, (stopped, best) in enumerate(zip(meta["stopped_epoch"], meta["selected_epoch"]))
             if stopped is None and done - best >= patience]
    for f in newly:
        meta["stopped_epoch"][f] = done
        log.info("fold %s stopped early after epoch %d (best validation %s %.4f at epoch %d)",
                 run.plan.names[fold_ids[f]], done, run.tc.val_metric,
                 meta["best_score"][f] * VAL_METRICS[run.tc.val_metric], meta["selected_epoch"][f])
    return bool(newly)


def _finish_stopped_chunk(run: _Run, meta: dict, done: int, real: int) -> int:
    """Every fold of the chunk has stopped at or before `done`: fill the history up to num_epochs as the
    frozen models would (NaN training loss, the same predictions and validation scores at every later
    eval epoch) and return num_epochs, so the chunk counts as complete."""
    tc = run.tc
    for epoch in range(done + 1, tc.num_epochs + 1):
        meta["train_loss"].append([math.nan] * real)
        meta["train_accuracy"].append([math.nan] * real)
        if epoch % tc.eval_every_epochs == 0 or epoch == tc.num_epochs:
            meta["eval_epoch"].append(epoch)
            meta["test_probs"].append(meta["test_probs"][-1])
            if tc.selection == "val":
                meta["val_score"].append(meta["val_score"][-1])
    return tc.num_epochs


def _val_metric(run: _Run, labels: np.ndarray, probs: np.ndarray) -> float:
    """`train.val_metric` of predicted probabilities: UF1 of the argmax, or the mean cross-entropy."""
    if run.tc.val_metric == "uf1":
        return run.score_fn(labels, probs.argmax(-1))
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))


def _evaluate(run: _Run, state, meta: dict, done: int, test_masks, val_masks, real: int, values) -> None:
    """Held-out predictions at this epoch, and the selection rule's bookkeeping."""
    test, alpha = run.predict_folds(state["train"], test_masks, values)
    test, alpha = test[:real], (alpha or [None] * real)[:real]
    meta["eval_epoch"].append(done)
    meta["test_probs"].append([p.tolist() for p in test])
    selection = run.tc.selection
    if selection == "last":
        meta["selected_epoch"] = [done] * real
        meta["selected_test_probs"] = [p.tolist() for p in test]
        meta["selected_test_alpha"] = [None if a is None else a.tolist() for a in alpha]
        return
    if selection == "val":
        scored = run.predict_folds(state["train"], val_masks, values)[0][:real]
        measured = [_val_metric(run, run.labels[m], p) for m, p in zip(val_masks, scored)]
        meta["val_score"].append(measured)
        scores = [VAL_METRICS[run.tc.val_metric] * v for v in measured]
    else:
        scores = [run.score_fn(run.labels[m], p.argmax(-1)) for m, p in zip(test_masks, test)]
    improved = np.zeros(run.chunk_size, bool)
    for f, score in enumerate(scores):
        if meta["stopped_epoch"][f] is None and (meta["best_score"][f] is None or score > meta["best_score"][f]):
            improved[f] = True
            meta["best_score"][f], meta["selected_epoch"][f] = score, done
            meta["selected_test_probs"][f] = test[f].tolist()
            meta["selected_test_alpha"][f] = None if alpha[f] is None else alpha[f].tolist()
    model = {"params": state["train"]["params"], "batch_stats": state["train"]["batch_stats"]}
    state["selected"] = _where_folds(run.put_folds(improved), model, state["selected"])


def train_folds(*, config, workdir, data: dict, plan: FoldPlan, make_model: Callable[[nnx.Rngs], nnx.Module],
                input_keys, flow_keys=(), num_classes: int, score_fn: Callable,
                versions: Versions | None = None) -> TrainResult:
    """Train every fold of `plan` on `data` ({input arrays [N, ...], 'label' [N]}) and predict its
    test samples. `score_fn(labels, preds) -> float` ranks epochs for the val / test_selected rules.
    `versions` names inputs with several versions per sample (`Versions`). Resumes from checkpoints in
    `workdir`."""
    if not np.array_equal(plan.test.sum(0), np.ones(plan.test.shape[1])):
        raise ValueError("every sample must be tested by exactly one fold (LOSO, LODO and k-fold plans are)")
    start = time.perf_counter()
    run = _Run(config=config, workdir=workdir, data=data, plan=plan, make_model=make_model,
               input_keys=input_keys, flow_keys=flow_keys, num_classes=num_classes, score_fn=score_fn,
               versions=versions)
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
    test_alpha = None
    test_fold = plan.test.argmax(0)
    selected = np.zeros(plan.num_folds, int)
    trained = np.zeros(plan.num_folds, int)
    eval_epochs = metas[0]["eval_epoch"]
    history_probs = np.full((len(eval_epochs), n, k), np.nan, np.float32)
    for meta in metas:
        for j, f in enumerate(meta["fold_ids"]):
            rows = np.flatnonzero(plan.test[f])
            selected[f] = meta["selected_epoch"][j]
            trained[f] = meta["stopped_epoch"][j] or meta["epoch"]
            if meta["selected_test_probs"][j] is not None:
                test_probs[rows] = np.asarray(meta["selected_test_probs"][j])
            if meta["selected_test_alpha"][j] is not None:
                test_alpha = np.full(n, np.nan, np.float32) if test_alpha is None else test_alpha
                test_alpha[rows] = np.asarray(meta["selected_test_alpha"][j])
            for e, per_fold in enumerate(meta["test_probs"][:len(eval_epochs)]):
                history_probs[e, rows] = np.asarray(per_fold[j])
    history = {
        "epoch": list(range(1, len(metas[0]["train_loss"]) + 1)),
        "train_loss": _stack_folds(metas, "train_loss"), "train_accuracy": _stack_folds(metas, "train_accuracy"),
        "eval_epoch": eval_epochs, "test_probs": history_probs,
        "val_score": _stack_folds(metas, "val_score") if run.tc.selection == "val" else None,
    }
    return TrainResult(test_probs=test_probs, test_fold=test_fold, selected_epoch=selected, epochs_trained=trained,
                       history=history, selection=run.tc.selection, wall_time_s=wall, interrupted=interrupted,
                       test_alpha=test_alpha)


def _stack_folds(metas: list[dict], key: str) -> np.ndarray:
    """[E, F_done] from per-chunk lists [E][F_chunk], over the epochs every chunk reached."""
    epochs = min(len(m[key]) for m in metas)
    return np.concatenate([np.asarray(m[key][:epochs]).reshape(epochs, -1) for m in metas], axis=1)
