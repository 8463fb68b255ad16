"""Magnified apex frames from a trained motion magnifier (papers/adaptive-dstnet.txt section 3.2).

A checkpoint is a folder (`mer_jax.train.magnifier_training.pretrain` writes `<workdir>/checkpoint`):
  net.json  the MagnifierNet constructor fields
  params/   orbax StandardCheckpointer save of the network's parameters (features/network_checkpoint.py)
`magnify` is jitted and batched: per-sample alphas stay on the device, so alpha balancing and the
adaptive-alpha loop call it inside their own jitted code. `motion_ratio` measures with TV-L1 how much a
magnified frame moved compared with a reference frame (the exactly rendered target).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mer_jax.features.flow_tvl1 import TVL1Params
from mer_jax.features.magnifier_net import MagnifierNet
from mer_jax.features.network_checkpoint import load_network, save_network
from mer_jax.features.tvl1_jax import tvl1_flow_batch


def save_magnifier(path, net: MagnifierNet, fields: dict) -> None:
    """Write `net` (built from constructor `fields`) as a checkpoint folder `path` (module docstring)."""
    save_network(path, net, fields, "net.json")


def load_magnifier(path) -> MagnifierNet:
    """The MagnifierNet of a checkpoint folder written by `save_magnifier`."""
    return load_network(path, "net.json", lambda **fields: MagnifierNet(**fields, rngs=nnx.Rngs(0)),
                        "magnifier checkpoint (python -m mer_jax.main --config configs/magnifier.py writes "
                        "<workdir>/checkpoint)")


def _to_unit(frames: jax.Array, name: str) -> jax.Array:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"magnify: {name} must be RGB frames [B, H, W, 3], got shape {frames.shape}")
    return frames.astype(jnp.float32) / 255.0 if frames.dtype == jnp.uint8 else frames.astype(jnp.float32)


@functools.partial(jax.jit, static_argnums=0)
def _magnify(graphdef, state, onset, apex, alpha):
    net = nnx.merge(graphdef, state)
    unit = net(_to_unit(onset, "onset") * 2 - 1, _to_unit(apex, "apex") * 2 - 1, alpha) * 0.5 + 0.5
    return jnp.round(unit * 255).astype(jnp.uint8) if onset.dtype == jnp.uint8 else unit


def magnify(net: MagnifierNet, onset, apex, alpha) -> jax.Array:
    """The magnified apex [B, H, W, 3] of onset and apex frames [B, H, W, 3] (uint8, or float in [0, 1]),
    in the input's kind; alpha a scalar or one per sample [B]."""
    graphdef, state = nnx.split(net)
    return _magnify(graphdef, state, jnp.asarray(onset), jnp.asarray(apex), jnp.asarray(alpha, jnp.float32))


def motion_ratio(onset, moved, reference, params: TVL1Params = TVL1Params(), border: int = 6) -> np.ndarray:
    """Per pair [B]: how many times `reference`'s motion the frame `moved` holds, both measured from `onset`
    with TV-L1 on grey frames: sum(f_m . f_r) / sum(|f_r|^2) over the pixels `border` px away from the
    edges, f_r the flow onset -> reference and f_m onset -> moved. Frames [B, H, W, 3], uint8 or float in
    [0, 1]. With the exactly rendered alpha-times target as `reference`, a magnified output reads 1 when it
    holds alpha times the input motion: both flows are of the same size, so TV-L1's bias on small, low-contrast
    motions (it reads a 0.5 px move 20-60% short) cancels, where a ratio to the input's own flow would not."""
    grey = lambda x: _to_unit(jnp.asarray(x), "frames").mean(-1)
    first = jnp.concatenate([grey(onset)] * 2)
    flow = np.asarray(tvl1_flow_batch(first, jnp.concatenate([grey(reference), grey(moved)]), params,
                                      pairs_per_step=1))
    inner = (slice(None), slice(border, -border), slice(border, -border))
    f_r, f_m = flow[: len(flow) // 2][inner], flow[len(flow) // 2:][inner]
    return (f_m * f_r).sum((1, 2, 3)) / np.maximum((f_r * f_r).sum((1, 2, 3)), 1e-12)
