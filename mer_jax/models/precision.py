"""Mixed precision: the networks compute in `config.train.compute_dtype` while their parameters,
BatchNorm statistics and optimizer state stay float32 (issue 5).

Every Flax layer that has a `param_dtype` (Conv, Linear, BatchNorm, ...) also has a `dtype`, the
dtype it computes in: it casts its input and its float32 parameters to `dtype` before the
convolution or matmul. `with_compute_dtype` sets that `dtype` on every such layer of a freshly built
model, so the forward and backward passes run in bfloat16 while the gradients reach the float32
parameters through the casts. BatchNorm computes its batch mean and variance in float32 whatever its
`dtype` (Flax promotes them), so its running averages keep float32 precision. The logits come out
in the compute dtype; the losses and the predicted probabilities cast them to float32 first
(train/losses.py, train/step.py). None of the papers trains in reduced precision (docs/deviations.md,
"Mixed precision").
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
from flax import nnx

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str):
    """The jnp dtype named by `config.train.compute_dtype`; raises for any other name."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"train.compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {name!r}")
    return COMPUTE_DTYPES[name]


def set_compute_dtype(model: nnx.Module, dtype) -> nnx.Module:
    """Make every parameterised Flax layer of `model` compute in `dtype` (in place; returns `model`).
    Parameters keep their own dtype (`param_dtype`, float32 here)."""
    model.set_attributes(lambda _, module: hasattr(module, "param_dtype"), dtype=dtype)
    return model


def with_compute_dtype(make_model: Callable[[nnx.Rngs], nnx.Module], name: str) -> Callable[[nnx.Rngs], nnx.Module]:
    """`make_model` whose models compute in the dtype `name` ("float32" returns `make_model` itself)."""
    dtype = compute_dtype(name)
    if dtype == jnp.float32:
        return make_model
    return lambda rngs: set_compute_dtype(make_model(rngs), dtype)
