"""The fold-stacked training state: one model per fold, as plain pytrees with a leading fold axis.

The NNX model is split once into a static `graphdef` and its Param / BatchStat states; everything
that changes during training lives in a dict pytree
  {"params", "batch_stats", "opt_state", "step", "dropout_key"}
whose every leaf has a leading axis of size F (the folds of one chunk), so the update step is
`jax.jit(jax.vmap(step))` and orbax saves it as it is.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


def split_model(model: nnx.Module):
    """(graphdef, params, batch_stats); raises if the model holds state the trainer would drop."""
    graphdef, params, stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    if jax.tree.leaves(rest):
        raise ValueError(f"{type(model).__name__} holds state other than Param and BatchStat "
                         f"({sorted(set(type(v).__name__ for v in jax.tree.leaves(rest, is_leaf=lambda x: isinstance(x, nnx.Variable))))}); "
                         "the functional trainer cannot carry it")
    return graphdef, params, stats


def fold_keys(seed: int, fold_ids: np.ndarray) -> jax.Array:
    """One PRNG key per fold, derived from the fold's global index so chunking never changes it."""
    root = jax.random.key(seed)
    return jax.vmap(lambda f: jax.random.fold_in(root, f))(jnp.asarray(fold_ids))


def model_graphdef(make_model: Callable[[nnx.Rngs], nnx.Module]):
    """The static graph of the model, from an abstract (allocation-free) construction."""
    return split_model(nnx.eval_shape(lambda: make_model(nnx.Rngs(0))))[0]


def init_fold_states(make_model: Callable[[nnx.Rngs], nnx.Module], tx: optax.GradientTransformation,
                     keys: jax.Array):
    """Train state stacked over the folds whose init keys are `keys`."""

    def init_one(key):
        _, params, stats = split_model(make_model(nnx.Rngs(key)))
        # The fold's dropout stream (raw key data, so orbax saves it), apart from the init stream;
        # each step folds in its step number. Models without dropout never read it.
        return {"params": params, "batch_stats": stats, "opt_state": tx.init(params),
                "step": jnp.zeros((), jnp.int32), "dropout_key": jax.random.key_data(jax.random.fold_in(key, 1))}

    return jax.vmap(init_one)(keys)
