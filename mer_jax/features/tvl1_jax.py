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

import jax
import jax.numpy as jnp

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
    """Central differences / 2 inside, half one-sided differences at the border (OpenCV's centeredGradient)."""
    padded = jnp.pad(image, 1, mode="edge")
    dx = 0.5 * (padded[1:-1, 2:] - padded[1:-1, :-2])
    dy = 0.5 * (padded[2:, 1:-1] - padded[:-2, 1:-1])
    return dx, dy


def _forward_gradient(u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Forward differences, zero on the last column (x) and last row (y)."""
    dx = jnp.pad(u[:, 1:] - u[:, :-1], ((0, 0), (0, 1)))
    dy = jnp.pad(u[1:, :] - u[:-1, :], ((0, 1), (0, 0)))
    return dx, dy


def _divergence(p1: jax.Array, p2: jax.Array) -> jax.Array:
    """Backward differences with zeros before the first column / row: the adjoint of -forward gradient."""
    return (p1 - jnp.pad(p1[:, :-1], ((0, 0), (1, 0)))) + (p2 - jnp.pad(p2[:-1, :], ((1, 0), (0, 0))))


def _keys_weights(t: jax.Array) -> jax.Array:
    """Bicubic (Keys, a = -0.75) weights of the 4 taps at offsets -1, 0, 1, 2 for fractional part t."""
    a = -0.75
    d = jnp.stack([1.0 + t, t, 1.0 - t, 2.0 - t])
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    return jnp.where(d <= 1.0, near, far)


def _warp_bicubic(images: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
    """images [C, H, W] sampled at (x + u, y + v), bicubic, border repeated."""
    _, height, width = images.shape
    ys, xs = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32),
                          indexing="ij")
    x, y = xs + u, ys + v
    x0, y0 = jnp.floor(x), jnp.floor(y)
    wx, wy = _keys_weights(x - x0), _keys_weights(y - y0)          # [4, H, W]
    cols = jnp.clip(x0.astype(jnp.int32)[None] + jnp.arange(-1, 3)[:, None, None], 0, width - 1)
    rows = jnp.clip(y0.astype(jnp.int32)[None] + jnp.arange(-1, 3)[:, None, None], 0, height - 1)
    taps = images[:, rows[:, None], cols[None, :]]                 # [C, 4 (y), 4 (x), H, W]
    return jnp.einsum("cijhw,ihw,jhw->chw", taps, wy, wx)


def _median(u: jax.Array, size: int) -> jax.Array:
    """size x size median filter, border repeated (as cv2.medianBlur)."""
    r = size // 2
    padded = jnp.pad(u, r, mode="edge")
    height, width = u.shape
    windows = [padded[i:i + height, j:j + width] for i in range(size) for j in range(size)]
    return jnp.median(jnp.stack(windows), axis=0)


def _one_warp(i0: jax.Array, stack: jax.Array, u: jax.Array, p: jax.Array, params: TVL1Params):
    """Warp the second frame and its gradient by u, then run the outer/inner primal-dual loops."""
    l_t = params.lambda_ * params.theta
    taut = params.tau / params.theta
    scaled_epsilon = params.epsilon ** 2 * i0.size
    i1w, i1wx, i1wy = _warp_bicubic(stack, u[0], u[1])
    grad = i1wx ** 2 + i1wy ** 2
    rho_c = i1w - i1wx * u[0] - i1wy * u[1] - i0
    image_gradient = jnp.stack([i1wx, i1wy])

    def primal_dual(carry):
        u, p, _, n = carry
        rho = rho_c + i1wx * u[0] + i1wy * u[1]
        # Thresholding step TH (Zach et al. eq. 11): the data-term minimiser v for fixed u.
        step = jnp.where(rho < -l_t * grad, l_t,
                         jnp.where(rho > l_t * grad, -l_t,
                                   jnp.where(grad > jnp.finfo(jnp.float32).eps, -rho / jnp.maximum(grad, 1e-30),
                                             0.0)))
        v = u + step * image_gradient
        new_u = v + params.theta * jnp.stack([_divergence(p[0], p[1]), _divergence(p[2], p[3])])
        error = jnp.sum((new_u - u) ** 2)
        u1x, u1y = _forward_gradient(new_u[0])
        u2x, u2y = _forward_gradient(new_u[1])
        n1 = 1.0 + taut * jnp.sqrt(u1x ** 2 + u1y ** 2)
        n2 = 1.0 + taut * jnp.sqrt(u2x ** 2 + u2y ** 2)
        p = jnp.stack([(p[0] + taut * u1x) / n1, (p[1] + taut * u1y) / n1,
                       (p[2] + taut * u2x) / n2, (p[3] + taut * u2y) / n2])
        return new_u, p, error, n + 1

    def outer(carry):
        u, p, error, n = carry
        if params.median_filtering > 1:
            u = jnp.stack([_median(u[0], params.median_filtering), _median(u[1], params.median_filtering)])
        inner_going = lambda c: (c[2] > scaled_epsilon) & (c[3] < params.inner_iterations)
        u, p, error, _ = jax.lax.while_loop(inner_going, primal_dual, (u, p, error, 0))
        return u, p, error, n + 1

    outer_going = lambda c: (c[2] > scaled_epsilon) & (c[3] < params.outer_iterations)
    start = (u, p, jnp.asarray(jnp.finfo(jnp.float32).max, jnp.float32), 0)
    u, p, _, _ = jax.lax.while_loop(outer_going, outer, start)
    return u, p


def _one_level(i0: jax.Array, i1: jax.Array, u: jax.Array, params: TVL1Params) -> jax.Array:
    """Refine flow u [2, H, W] on one pyramid level (OpenCV's procOneScale); p starts at zero."""
    i1x, i1y = _centred_gradient(i1)
    stack = jnp.stack([i1, i1x, i1y])
    p = jnp.zeros((4,) + i0.shape, jnp.float32)
    for _ in range(params.warps):  # few: unrolled
        u, p = _one_warp(i0, stack, u, p, params)
    return u


def _flow_pair(first: jax.Array, second: jax.Array, params: TVL1Params) -> jax.Array:
    """Flow [H, W, 2] of one pair of [H, W] frames on the 0..255 scale."""
    if params.gamma != 0:
        raise ValueError(f"the JAX TV-L1 has no illumination term; TVL1Params.gamma must be 0, got {params.gamma}")
    shapes = pyramid_shapes(*first.shape, params)
    levels0 = [first] + [jax.image.resize(first, s, "linear") for s in shapes[1:]]
    levels1 = [second] + [jax.image.resize(second, s, "linear") for s in shapes[1:]]
    u = jnp.zeros((2,) + shapes[-1], jnp.float32)
    for level in range(len(shapes) - 1, -1, -1):
        u = _one_level(levels0[level], levels1[level], u, params)
        if level:
            u = jax.image.resize(u, (2,) + shapes[level - 1], "linear", antialias=False) / params.scale_step
    return jnp.moveaxis(u, 0, -1)


@functools.partial(jax.jit, static_argnames="params")
def tvl1_flow_batch(first: jax.Array, second: jax.Array, params: TVL1Params = TVL1Params()) -> jax.Array:
    """Flow [B, H, W, 2] (u horizontal, v vertical, pixels) carrying `first[b]` onto `second[b]`.

    first, second: [B, H, W] grey frames, float in [0, 1] (or uint8 0..255, as OpenCV takes them).
    """
    if first.shape != second.shape or first.ndim != 3:
        raise ValueError(f"expected two [B, H, W] batches of the same shape, got {first.shape} and {second.shape}")
    scale = 1.0 if first.dtype == jnp.uint8 else 255.0
    first = first.astype(jnp.float32) * scale
    second = second.astype(jnp.float32) * scale
    return jax.vmap(lambda a, b: _flow_pair(a, b, params))(first, second)

