"""Update and prediction steps for ONE fold; the trainer runs them as `jax.jit(jax.vmap(...))`.

Both read the corpus features from `data` (a dict of [N, ...] arrays shared by all folds) and
gather their batch by sample id, so only int ids travel per step. Arrays named in `variant_keys` hold
several versions of every sample, [N, V, ...] (e.g. Adaptive DSTNet's apex magnified at V alphas): a
train batch takes version `variant_ids[b]` of sample `sample_ids[b]`, a prediction version
`eval_variant`. What differs between folds besides their state travels in `fold` (see `fold_values`).
"""

import functools
import inspect
from typing import Callable

import jax
import jax.numpy as jnp
import optax
from clu import metrics as clu_metrics
from flax import nnx, struct

from mer_jax.data.augment import AugmentConfig, augment_batch
from mer_jax.models.adaptive_alpha import adaptive_alpha


@struct.dataclass
class TrainMetrics(clu_metrics.Collection):
    loss: clu_metrics.Average.from_output("loss")
    accuracy: clu_metrics.Accuracy


def _takes_dropout_key(model) -> bool:
    """Models with dropout (e.g. STSTNet, Off-ApexNet) take the PRNG key as a `dropout_key` call argument."""
    return "dropout_key" in inspect.signature(type(model).__call__).parameters


def fold_values(class_weights, active, input_stats=None) -> dict:
    """The per-fold values a train step reads besides its batch and state:
      class_weights [K]  the loss weighting of the fold's training labels
      active       []    False once the fold has stopped early: its update is discarded, so its
                         parameters, statistics and optimizer state stay as they were (masked update;
                         read by train steps built with `mask_stopped`)
      input_stats        {input key: {"mean": [C], "std": [C]}} of the fold's training samples; those
                         inputs are standardised per channel after augmentation (`standardise`)
    For vmapped folds every leaf has a leading fold axis. `predict` reads `input_stats` only."""
    return {"class_weights": class_weights, "active": active, "input_stats": input_stats or {}}


def standardise(inputs: dict, input_stats: dict) -> dict:
    """`inputs` with every key of `input_stats` mapped to (x - mean) / std per channel."""
    return {k: (x - input_stats[k]["mean"]) / input_stats[k]["std"] if k in input_stats else x
            for k, x in inputs.items()}


def _gather(data: dict, keys, sample_ids, variant_ids, variant_keys) -> dict:
    return {k: data[k][sample_ids, variant_ids] if k in variant_keys else data[k][sample_ids] for k in keys}


def _call(graphdef, params, batch_stats, inputs, train: bool, dropout_key=None):
    """(the merged model after the call, its logits). `dropout_key` goes to models that take one, in
    training only."""
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    extra = {"dropout_key": dropout_key} if train and dropout_key is not None and _takes_dropout_key(model) else {}
    return model, model(inputs, train=train, **extra)


def _apply(graphdef, params, batch_stats, inputs, train: bool, dropout_key=None):
    """Logits and the BatchNorm statistics after the call (changed only when `train`)."""
    model, logits = _call(graphdef, params, batch_stats, inputs, train, dropout_key)
    return logits, nnx.state(model, nnx.BatchStat)


def auxiliary_losses(model, labels) -> dict:
    """The extra loss terms of a model that defines `auxiliary_losses(labels) -> {name: scalar}` (e.g.
    MADV-Net's L_freq and L_AU), read from the `model` object its training call ran on: the values it kept
    there as nnx.Intermediate variables (`self.name = nnx.Intermediate(value)`; `Module.sow` outside
    `nnx.capture` is deprecated in Flax 0.12) stay on that merged copy and never reach the returned Param or
    BatchStat state. {} for every other model."""
    terms = getattr(model, "auxiliary_losses", None)
    return {} if terms is None else dict(terms(labels))


def train_step(state, data, sample_ids, variant_ids, fold, aug_key, *, graphdef, tx, loss_fn: Callable,
               input_keys, flow_keys, augment: AugmentConfig, variant_keys=(), mask_stopped: bool = False):
    """One optimizer update of one fold on the batch `sample_ids` [B] (variants `variant_ids` [B]).

    `fold` holds the fold's `fold_values`. The loss is `loss_fn(logits, labels, class_weights)` plus the
    model's `auxiliary_losses` where it defines them (the metrics' loss is that sum). Returns (new state,
    TrainMetrics); with `mask_stopped` (early stopping on) a fold that is not `active` gets its state back
    unchanged. Without it the flag is not read, so runs that never stop a fold pay no select over their state.
    """
    inputs = _gather(data, input_keys, sample_ids, variant_ids, variant_keys)
    if augment.active:
        inputs = augment_batch(inputs, sample_ids, variant_ids, aug_key, augment, flow_keys, step=state["step"])
    inputs = standardise(inputs, fold["input_stats"])
    labels = data["label"][sample_ids]

    dropout_key = jax.random.fold_in(jax.random.wrap_key_data(state["dropout_key"]), state["step"])

    def loss_of(params):
        model, logits = _call(graphdef, params, state["batch_stats"], inputs, train=True, dropout_key=dropout_key)
        loss = loss_fn(logits, labels, fold["class_weights"])
        extra = auxiliary_losses(model, labels)
        if extra:
            loss = loss + sum(jnp.asarray(term, jnp.float32) for term in extra.values())
        return loss, (logits, nnx.state(model, nnx.BatchStat))

    (loss, (logits, stats)), grads = jax.value_and_grad(loss_of, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    new_state = {"params": optax.apply_updates(state["params"], updates), "batch_stats": stats,
                 "opt_state": opt_state, "step": state["step"] + 1, "dropout_key": state["dropout_key"]}
    if mask_stopped:
        new_state = jax.tree.map(lambda new, old: jnp.where(fold["active"], new, old), new_state, state)
    return new_state, TrainMetrics.single_from_model_output(loss=loss, logits=logits, labels=labels)


def predict(params, batch_stats, data, sample_ids, input_stats, *, graphdef, input_keys, variant_keys=(),
            eval_variant: int = 0):
    """Class probabilities [T, K] of one fold's model on `sample_ids` [T] (eval mode); `input_stats` as
    in `fold_values`."""
    inputs = _gather(data, input_keys, sample_ids, eval_variant, variant_keys)
    inputs = standardise(inputs, input_stats)
    logits, _ = _apply(graphdef, params, batch_stats, inputs, train=False)
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


def predict_adaptive(params, batch_stats, data, sample_ids, input_stats, *, graphdef, input_keys, variant_keys,
                     alphas: tuple[float, ...], threshold: float):
    """(class probabilities [T, K], alpha [T]) by Adaptive DSTNet's Algorithm 1 (models/adaptive_alpha.py):
    version v of the `variant_keys` inputs holds the apex magnified by `alphas[v]` (evenly spaced), and every
    sample keeps the most confident prediction over the factors it tried before one reached `threshold`,
    and the factor that gave it."""
    start, step = alphas[0], (alphas[1] - alphas[0] if len(alphas) > 1 else 1.0)

    def predict_at(alpha, ids):
        version = jnp.round((alpha - start) / step).astype(jnp.int32)
        return predict(params, batch_stats, data, ids, input_stats, graphdef=graphdef, input_keys=input_keys,
                       variant_keys=variant_keys, eval_variant=version)

    result = adaptive_alpha(predict_at, sample_ids, init_alpha=start, max_alpha=alphas[-1], alpha_step=step,
                            threshold=threshold)
    return result.probs, result.alpha


def fold_parallel(fn, **static):
    """`fn` (a step, or a step already bound to its static arguments) bound to `static` and vmapped over
    a leading fold axis of every argument except `data` (the shared feature arrays) and, for train
    steps, the augmentation key."""
    bound = functools.partial(fn, **static)
    if bound.func is train_step:
        return jax.vmap(bound, in_axes=(0, None, 0, 0, 0, None))
    return jax.vmap(bound, in_axes=(0, 0, None, 0, 0))   # predict, predict_adaptive
