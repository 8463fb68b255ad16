"""How convolutions are lowered when the trainer vmaps a network over folds.

`jax.vmap` over a fold axis turns a convolution whose input and kernel both carry that axis into ONE
grouped convolution (`feature_group_count` = folds). Accelerators run it well; XLA:CPU runs it 2.5-5x
slower per fold than the fold's own convolution (measured: M3ENet train step at batch 128 on 2 cores,
506 ms per fold alone against 1465 ms per fold with 4 folds vmapped). The "loop" strategy gives the
convolution a custom batching rule instead: one ordinary convolution per fold, unrolled in the compiled
program, forward and backward (a custom VJP whose two gradient convolutions are batched the same way).
It is then as fast per fold as training the folds one after another (534 ms per fold with 12 folds),
at the price of a longer compile (the program holds one copy of every convolution per fold).

Strategies (config `train.fold_conv`):
  auto     loop on CPU, grouped elsewhere (the default)
  loop     one convolution per fold
  grouped  JAX's own batching rule (a grouped convolution)
The strategy is read when a step is traced: `traced_with(name, step)` binds it to the step (the
trainer's way), `strategy(name)` sets it for whatever is traced inside the context.
Batched axes longer than `MAX_UNROLLED` (a model's own vmap over, say, a batch) always use the grouped
form, so only the fold axis is unrolled. Results agree to float round-off (tests/test_fold_conv.py).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap

STRATEGIES = ("auto", "loop", "grouped")
MAX_UNROLLED = 64          # folds of one chunk on one device; longer batched axes keep the grouped form

_strategy = contextvars.ContextVar("fold_conv_strategy", default="auto")


def _check(name: str) -> None:
    if name not in STRATEGIES:
        raise ValueError(f"train.fold_conv must be one of {STRATEGIES}, got {name!r}")


@contextlib.contextmanager
def strategy(name: str):
    """Trace convolutions inside this context with strategy `name` (one of STRATEGIES)."""
    _check(name)
    token = _strategy.set(name)
    try:
        yield
    finally:
        _strategy.reset(token)


def traced_with(name: str, fn):
    """`fn` whose convolutions use strategy `name` wherever it is traced (e.g. inside `jax.jit`)."""
    _check(name)

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        with strategy(name):
            return fn(*args, **kwargs)

    return traced


def _loops() -> bool:
    name = _strategy.get()
    return name == "loop" or (name == "auto" and jax.default_backend() == "cpu")


def _batched(fn, num_outputs: int):
    """`fn` with a batching rule that calls it once per index of a short batched axis."""
    wrapped = custom_vmap(fn)

    @wrapped.def_vmap
    def _rule(axis_size, in_batched, *args):
        if axis_size > MAX_UNROLLED:
            in_axes = tuple(0 if b else None for b in in_batched)
            out = jax.vmap(fn, in_axes=in_axes)(*args)
        else:
            outs = [fn(*[a[i] if b else a for a, b in zip(args, in_batched)]) for i in range(axis_size)]
            out = jax.tree.map(lambda *o: jnp.stack(o), *outs)
        return out, (True,) * num_outputs if num_outputs > 1 else True

    return wrapped


def _conv_transposes(conv, x, w, g):
    """Cotangents of conv(x, w) for output cotangent g: the input and the kernel gradient."""
    (dx,) = jax.linear_transpose(lambda x: conv(x, w), x)(g)
    (dw,) = jax.linear_transpose(lambda w: conv(x, w), w)(g)
    return dx, dw


def conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs):
    """`lax.conv_general_dilated` (same arguments), batched over folds by the active strategy."""
    if kwargs.get("out_sharding", ()) is None:
        kwargs.pop("out_sharding")
    conv = functools.partial(lax.conv_general_dilated, window_strides=window_strides, padding=padding, **kwargs)
    if not _loops():
        return conv(lhs, rhs)
    forward = _batched(conv, 1)
    backward = _batched(functools.partial(_conv_transposes, conv), 2)
    looped = jax.custom_vjp(lambda x, w: forward(x, w))
    looped.defvjp(lambda x, w: (forward(x, w), (x, w)), lambda saved, g: backward(*saved, g))
    return looped(lhs, rhs)
