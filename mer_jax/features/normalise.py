"""Input normalisations the papers and their reference code use; all jittable, float32.

Arrays are channels-last ([..., H, W, C]). Which network uses which:
- `rescale` 0..255 -> [0, 1]: EDMDBN (public code `ToTensor` before the ImageNet normalisation);
  STSTNet/HTNet flow images (`features.value_scale`). 0..255 -> [-1, 1]: Adaptive DSTNet's motion
  magnifier (deep_motion_mag scales images to [-1, 1]) and RAFT (torchvision's RAFT transforms).
- `standardise` with `IMAGENET_MEAN` / `IMAGENET_STD`: EDMDBN (public code `FuseNetTransform`, timm's
  ImageNet constants, applied to the frames before the entire/detail differences are taken).
- `standardise` with `channel_mean_std` of the data set: DFR-Net (paper section 4.2: "normalized the
  input images using the dataset's mean and standard deviation").
- `min_max` per sample and channel: the u, v, strain flow maps of meb's flow cache
  (`tools/extract_optical_flow.py`) and of the released STSTNet/HTNet flow images.
- `scale_flow`: flow computed at one size and resized to another keeps its vectors in pixels of the
  new size (M3ENet inputs with `features.flow_size` != `features.size`).
M3ENet (section 3.1) and MADV-Net state no input normalisation; Adaptive DSTNet none besides the above.
"""
from __future__ import annotations

import jax.numpy as jnp

# timm IMAGENET_DEFAULT_MEAN / IMAGENET_DEFAULT_STD, for RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def rescale(x: jnp.ndarray, src: tuple[float, float] = (0.0, 255.0),
            dst: tuple[float, float] = (0.0, 1.0)) -> jnp.ndarray:
    """x mapped affinely from the range `src` onto `dst` (values outside `src` are not clipped)."""
    (a, b), (c, d) = src, dst
    if a == b:
        raise ValueError(f"source range must not be empty, got {src}")
    return (jnp.asarray(x, jnp.float32) - a) * ((d - c) / (b - a)) + c


def min_max(x: jnp.ndarray, *, axes: tuple[int, ...] = (-3, -2)) -> jnp.ndarray:
    """x mapped to [0, 1] by its own minimum and maximum over `axes` (default: per sample and channel
    of [..., H, W, C]; use (-2, -1) for one-channel [..., H, W]). A constant slice maps to 0."""
    x = jnp.asarray(x, jnp.float32)
    low = jnp.min(x, axis=axes, keepdims=True)
    span = jnp.max(x, axis=axes, keepdims=True) - low
    return jnp.where(span > 0, (x - low) / jnp.where(span > 0, span, 1.0), 0.0)


def standardise(x: jnp.ndarray, mean, std) -> jnp.ndarray:
    """(x - mean) / std per channel; mean and std are [C] (or broadcastable to x)."""
    return (jnp.asarray(x, jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def channel_mean_std(x: jnp.ndarray, weights=None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per-channel mean and (population) std [C] of a data set x [N, ..., C].

    `weights` [N] weighs the samples, e.g. a fold's training mask, so each LOSO fold can take its
    statistics from its own training subjects only (vmap over the fold axis of a [F, N] mask).
    """
    x = jnp.asarray(x, jnp.float32)
    w = jnp.ones(x.shape[0], jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    w = jnp.broadcast_to(w.reshape(w.shape + (1,) * (x.ndim - 1)), x.shape[:-1] + (1,))
    axes = tuple(range(x.ndim - 1))
    total = jnp.sum(w, axis=axes)
    mean = jnp.sum(w * x, axis=axes) / total
    var = jnp.sum(w * (x - mean) ** 2, axis=axes) / total
    return mean, jnp.sqrt(var)


def scale_flow(flow: jnp.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> jnp.ndarray:
    """Flow [..., 2] (u, v in pixels of an image of size src_hw = (H, W)) in pixels of size dst_hw:
    u scaled by W'/W, v by H'/H. Resizing the maps themselves is the caller's."""
    (h, w), (h2, w2) = src_hw, dst_hw
    return jnp.asarray(flow, jnp.float32) * jnp.asarray([w2 / w, h2 / h], jnp.float32)
