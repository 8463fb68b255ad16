"""Dual TV-L1 optical flow in JAX: batched over frame pairs, jittable, float32.

The TV-L1 energy of Zach, Pock and Bischof (DAGM 2007), minimised as Wedel et al. (2009) and the IPOL
description of Sanchez Perez, Meinhardt-Llopis and Facciolo (2013) do, with the same parameters, meanings
and defaults as OpenCV's `DualTVL1OpticalFlow` (`TVL1Params`):
- intensities on a 0..255 scale (OpenCV converts uint8 frames as they are and float frames x 255);
- a pyramid of `nscales` levels, each `scale_step` times the previous (linear resize), stopping before a
  side would fall under 16 pixels; the flow starts at zero on the coarsest level and is resized and
  divided by `scale_step` on the way down;
- per level, `warps` warps of the second frame and of its centred gradient by the current flow (bicubic,
  Keys a = -0.75 as OpenCV's INTER_CUBIC);
- per warp, up to `outer_iterations` rounds of a `median_filtering` x `median_filtering` median filter of
  the flow followed by up to `inner_iterations` primal-dual steps (thresholding of v, u = v + theta div p,
  p <- (p + tau/theta grad u) / (1 + tau/theta |grad u|)), stopping once the summed squared change of the
  flow falls under epsilon^2 x (pixels of the level), as OpenCV does. The dual variable p is reset per level.
Differences from OpenCV (docs/deviations.md): samples outside the frame repeat the border (OpenCV's remap
reads zeros there), and the pyramid's linear resize antialiases. `gamma` (OpenCV's illumination term)
must be 0.
"""
from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax.features.flow_tvl1 import TVL1Params

_MIN_SIDE = 16  # OpenCV stops adding pyramid levels below 16 pixels


def pyramid_shapes(height: int, width: int, params: TVL1Params) -> list[tuple[int, int]]:
    """(H, W) of every pyramid level, finest first, as OpenCV sizes them (each rounded from the last)."""
    shapes = [(height, width)]
    for _ in range(1, params.nscales):
        h, w = shapes[-1]
        h, w = int(round(h * params.scale_step)), int(round(w * params.scale_step))
        if h < _MIN_SIDE or w < _MIN_SIDE:
            break
        shapes.append((h, w))
    return shapes


def _centred_gradient(image: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Central differences / 2 inside, half one-sided differences at the border (OpenCV's centeredGradient).
    image: [..., H, W]."""
    pad = [(0, 0)] * (image.ndim - 2) + [(1, 1), (1, 1)]
    padded = jnp.pad(image, pad, mode="edge")
    dx = 0.5 * (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2])
    dy = 0.5 * (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1])
    return dx, dy


def _forward_gradient(u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Forward differences of u [..., H, W], zero on the last column (x) and last row (y)."""
    dx = jnp.concatenate([u[..., :, 1:] - u[..., :, :-1], jnp.zeros_like(u[..., :, :1])], axis=-1)
    dy = jnp.concatenate([u[..., 1:, :] - u[..., :-1, :], jnp.zeros_like(u[..., :1, :])], axis=-2)
    return dx, dy


def _divergence(p1: jax.Array, p2: jax.Array) -> jax.Array:
    """Backward differences with zeros before the first column / row: the adjoint of -forward gradient."""
    before_x = jnp.concatenate([jnp.zeros_like(p1[..., :, :1]), p1[..., :, :-1]], axis=-1)
    before_y = jnp.concatenate([jnp.zeros_like(p2[..., :1, :]), p2[..., :-1, :]], axis=-2)
    return (p1 - before_x) + (p2 - before_y)


def _keys_weights(t: jax.Array) -> jax.Array:
    """Bicubic (Keys, a = -0.75) weights [..., 4] of the taps at offsets -1, 0, 1, 2 for fractional part t."""
    a = -0.75
    d = jnp.stack([1.0 + t, t, 1.0 - t, 2.0 - t], axis=-1)
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    return jnp.where(d <= 1.0, near, far)


_PAD = 4   # border rows/columns repeated around a warped image: enough for every clamped 4 x 4 window


def _warp_bicubic(images: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
    """images [B, H, W, C] sampled at (x + u[b], y + v[b]) -> [B, H, W, C]; bicubic (OpenCV's INTER_CUBIC
    weights), border repeated.

    The top-left tap is clamped to the padded image, which equals clamping every tap to the frame: a 4 x 4
    window pushed further out than the padding only reads repeated border values. Taps are read as 16
    scalar gathers per channel from the flattened batch, which XLA fuses with the weighting.
    """
    batch, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (_PAD, _PAD), (_PAD, _PAD), (0, 0)), mode="edge")
    padded_width = width + 2 * _PAD
    ys, xs = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32),
                          indexing="ij")
    x, y = xs + u, ys + v
    wx, wy = _keys_weights(x - jnp.floor(x)), _keys_weights(y - jnp.floor(y))     # [B, H, W, 4]
    x0 = jnp.clip(jnp.floor(x), 1 - _PAD, width + _PAD - 3).astype(jnp.int32)
    y0 = jnp.clip(jnp.floor(y), 1 - _PAD, height + _PAD - 3).astype(jnp.int32)
    images_before = jnp.arange(batch, dtype=jnp.int32)[:, None, None] * (height + 2 * _PAD)
    corner = (images_before + y0 + _PAD - 1) * padded_width + x0 + _PAD - 1       # flat index of tap (0, 0)
    warped = []
    for c in range(channels):
        flat = padded[..., c].reshape(-1)
        rows = [sum(flat[corner + i * padded_width + j] * wx[..., j] for j in range(4)) for i in range(4)]
        warped.append(sum(row * wy[..., i] for i, row in enumerate(rows)))
    return jnp.stack(warped, axis=-1)


def _sorting_network(n: int) -> list[tuple[int, int]]:
    """Compare-exchange pairs (low wire, high wire) of Batcher's odd-even merge sort of n wires."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@functools.lru_cache(maxsize=None)
def _window_median_network(size: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchange pairs that sort size x size values, given wires c * size + r holding column c's
    r-th smallest value (every column already sorted): Batcher's network minus the exchanges that never
    swap on such input. By the 0-1 principle trying every 0-1 input with sorted columns ((size + 1)^size
    of them) finds those exchanges exactly. XLA drops the ones the median does not depend on.
    """
    columns = np.array([[0] * (size - ones) + [1] * ones for ones in range(size + 1)], np.int8)
    wires = np.array([np.concatenate(c) for c in itertools.product(columns, repeat=size)])
    needed = []
    for i, j in _sorting_network(size * size):
        low, high = wires[:, i].copy(), wires[:, j].copy()
        if np.any(low > high):
            needed.append((i, j))
            wires[:, i], wires[:, j] = np.minimum(low, high), np.maximum(low, high)
    return tuple(needed)


def _exchange(values: list, pairs) -> list:
    """Apply compare-exchanges to a list of arrays (elementwise min to the low wire, max to the high)."""
    values = list(values)
    for i, j in pairs:
        values[i], values[j] = jnp.minimum(values[i], values[j]), jnp.maximum(values[i], values[j])
    return values


def _median(u: jax.Array, size: int) -> jax.Array:
    """size x size median filter of u [..., H, W], border repeated, as cv2.medianBlur (size 3 or 5).

    Each column of `size` values is sorted once per pixel (shared by the `size` windows containing it);
    the pruned network of `_window_median_network` then takes the median of each window.
    """
    r = size // 2
    height, width = u.shape[-2:]
    padded = jnp.pad(u, [(0, 0)] * (u.ndim - 2) + [(r, r), (r, r)], mode="edge")
    rows = _exchange([padded[..., i:i + height, :] for i in range(size)], _sorting_network(size))
    wires = [rows[row][..., c:c + width] for c in range(size) for row in range(size)]
    return _exchange(wires, _window_median_network(size))[size * size // 2]


def _primal_dual_step(u: tuple, p: tuple, data: tuple, params: TVL1Params):
    """One primal-dual iteration on [B, H, W] fields: thresholding step TH for v (Zach et al. eq. 11), then
    u = v + theta div p and the projected dual ascent of p. Returns (u, p, summed squared change of u [B])."""
    i1wx, i1wy, grad, rho_c = data
    l_t, taut = params.lambda_ * params.theta, params.tau / params.theta
    rho = rho_c + i1wx * u[0] + i1wy * u[1]
    step = jnp.where(rho < -l_t * grad, l_t,
                     jnp.where(rho > l_t * grad, -l_t,
                               jnp.where(grad > jnp.finfo(jnp.float32).eps, -rho / jnp.maximum(grad, 1e-30), 0.0)))
    new_u = (u[0] + step * i1wx + params.theta * _divergence(p[0], p[1]),
             u[1] + step * i1wy + params.theta * _divergence(p[2], p[3]))
    error = jnp.sum((new_u[0] - u[0]) ** 2 + (new_u[1] - u[1]) ** 2, axis=(-2, -1))
    new_p = []
    for k, field in enumerate(new_u):
        fx, fy = _forward_gradient(field)
        norm = 1.0 + taut * jnp.sqrt(fx ** 2 + fy ** 2)
        new_p += [(p[2 * k] + taut * fx) / norm, (p[2 * k + 1] + taut * fy) / norm]
    return new_u, tuple(new_p), error


def _where(going: jax.Array, new: tuple, old: tuple) -> tuple:
    """Per pair of the batch: `new` fields where going[b], else `old`."""
    return tuple(jnp.where(going[:, None, None], a, b) for a, b in zip(new, old))


def _one_warp(i0: jax.Array, stack: jax.Array, u: tuple, p: tuple, params: TVL1Params):
    """Warp the second frames and their gradients by u, then run the outer/inner loops of every pair.

    Each pair stops on its own, as OpenCV's loops do for one pair: the batch iterates while any pair goes
    on, and pairs that have stopped keep their fields.
    """
    scaled_epsilon = params.epsilon ** 2 * i0.shape[-2] * i0.shape[-1]
    warped = _warp_bicubic(stack, u[0], u[1])
    i1w, i1wx, i1wy = warped[..., 0], warped[..., 1], warped[..., 2]
    data = (i1wx, i1wy, i1wx ** 2 + i1wy ** 2, i1w - i1wx * u[0] - i1wy * u[1] - i0)

    def outer(carry):
        u, p, error, n_outer = carry
        going = (error > scaled_epsilon) & (n_outer < params.outer_iterations)
        if params.median_filtering > 1:
            u = _where(going, tuple(_median(f, params.median_filtering) for f in u), u)

        def inner(carry):
            u, p, error, n_inner = carry
            active = going & (error > scaled_epsilon)
            new_u, new_p, new_error = _primal_dual_step(u, p, data, params)
            return _where(active, new_u, u), _where(active, new_p, p), jnp.where(active, new_error, error), n_inner + 1

        inner_going = lambda c: jnp.any(going & (c[2] > scaled_epsilon)) & (c[3] < params.inner_iterations)
        u, p, error, _ = jax.lax.while_loop(inner_going, inner, (u, p, error, 0))
        return u, p, error, n_outer + going

    outer_going = lambda c: jnp.any((c[2] > scaled_epsilon) & (c[3] < params.outer_iterations))
    batch = i0.shape[0]
    start = (u, p, jnp.full((batch,), jnp.finfo(jnp.float32).max), jnp.zeros((batch,), jnp.int32))
    u, p, _, _ = jax.lax.while_loop(outer_going, outer, start)
    return u, p


def _one_level(i0: jax.Array, i1: jax.Array, u: tuple, params: TVL1Params) -> tuple:
    """Refine the flow (u1, u2) of [B, H, W] frames on one pyramid level (OpenCV's procOneScale); the
    dual variables start at zero."""
    i1x, i1y = _centred_gradient(i1)
    stack = jnp.stack([i1, i1x, i1y], axis=-1)
    p = tuple(jnp.zeros_like(i0) for _ in range(4))
    u, _ = jax.lax.fori_loop(0, params.warps, lambda _, c: _one_warp(i0, stack, c[0], c[1], params), (u, p))
    return u


def _check_params(params: TVL1Params) -> None:
    if params.gamma != 0:
        raise ValueError(f"the JAX TV-L1 has no illumination term; TVL1Params.gamma must be 0, got {params.gamma}")
    if params.median_filtering > 1 and params.median_filtering not in (3, 5):
        raise ValueError("TVL1Params.median_filtering must be 0 or 1 (off), 3 or 5 (cv2.medianBlur's sizes for "
                         f"float flow), got {params.median_filtering}")


def _flow(first: jax.Array, second: jax.Array, params: TVL1Params) -> jax.Array:
    """Flow [B, H, W, 2] of [B, H, W] frames on the 0..255 scale, all pairs iterated together."""
    batch = first.shape[0]
    shapes = pyramid_shapes(*first.shape[1:], params)
    levels0 = [first] + [jax.image.resize(first, (batch,) + s, "linear") for s in shapes[1:]]
    levels1 = [second] + [jax.image.resize(second, (batch,) + s, "linear") for s in shapes[1:]]
    u = (jnp.zeros((batch,) + shapes[-1], jnp.float32),) * 2
    for level in range(len(shapes) - 1, -1, -1):
        u = _one_level(levels0[level], levels1[level], u, params)
        if level:
            u = tuple(jax.image.resize(f, (batch,) + shapes[level - 1], "linear", antialias=False) / params.scale_step
                      for f in u)
    return jnp.stack(u, axis=-1)


@functools.partial(jax.jit, static_argnames=("params", "pairs_per_step"))
def tvl1_flow_batch(first: jax.Array, second: jax.Array, params: TVL1Params = TVL1Params(),
                    pairs_per_step: int | None = None) -> jax.Array:
    """Flow [B, H, W, 2] (u horizontal, v vertical, pixels) carrying `first[b]` onto `second[b]`.

    first, second: [B, H, W] grey frames, float in [0, 1] (or uint8 0..255, as OpenCV takes them).
    pairs_per_step: pairs iterated together (the rest wait their turn). A group iterates until its slowest
    pair has converged, and on a CPU small groups also stay in cache, so the default is one pair at a time
    on CPU and the whole batch on an accelerator.
    """
    if first.shape != second.shape or first.ndim != 3:
        raise ValueError(f"expected two [B, H, W] batches of the same shape, got {first.shape} and {second.shape}")
    _check_params(params)
    scale = 1.0 if first.dtype == jnp.uint8 else 255.0
    first = first.astype(jnp.float32) * scale
    second = second.astype(jnp.float32) * scale
    if pairs_per_step is None:
        pairs_per_step = 1 if jax.default_backend() == "cpu" else first.shape[0]
    batch = first.shape[0]
    if pairs_per_step >= batch:
        return _flow(first, second, params)
    steps = -(-batch // pairs_per_step)
    grouped = [jnp.pad(f, ((0, steps * pairs_per_step - batch), (0, 0), (0, 0)), mode="edge")
               .reshape((steps, pairs_per_step) + f.shape[1:]) for f in (first, second)]
    flow = jax.lax.map(lambda group: _flow(group[0], group[1], params), grouped)
    return flow.reshape((steps * pairs_per_step,) + flow.shape[2:])[:batch]
