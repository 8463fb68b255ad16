"""On-device augmentation by flip, rotation, shift (random crop) and additive noise.

Two modes:
- variants (M3ENet paper section 4.1.1: every training sample becomes five variants): variant v of
  sample i is a fixed random transform drawn from `fold_in(key, i * variants + v)`; variant 0 is the
  sample itself, so an epoch over (sample, variant) pairs sees exactly `variants` versions of each
  sample, as offline augmentation would, without storing them.
- online (EDMDBN section 4.3: flip, random crop, rotation +-4 degrees): a fresh transform for every
  sample of every step, drawn from `fold_in(fold_in(key, step), position in the batch)`.
All maps of a sample share one transform, and a map with a time axis [T, H, W, C] (a clip) gets the
same transform on every frame, as the public EDMDBN code transforms its 4-D clip tensor. Arrays named
in `flow_keys` hold a flow field in channels 0 and 1 (u, v): a horizontal flip negates u and a
rotation rotates the (u, v) vectors as well as the grid. Vectors per sample [D] (e.g. an AU coding) are
not images and pass unchanged.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """variants: versions of each sample per epoch (M3ENet: 5; 1 = no augmentation unless online).
    online: a fresh transform every step instead of fixed variants (needs variants = 1).
    flip: horizontal flip with probability 1/2.
    max_rotation_deg: rotations are uniform in +-this (M3ENet gives no range: our 8; EDMDBN: 4).
    max_shift_px: integer shifts uniform in [-n, n] on each axis, edges extended: torchvision's
      RandomCrop(size, padding=n, padding_mode="edge") that EDMDBN's code uses (n = 4).
    max_noise: additive Gaussian noise with std uniform in [0, max_noise] x the map's own std."""
    variants: int = 5
    flip: bool = True
    max_rotation_deg: float = 8.0
    max_noise: float = 0.1
    online: bool = False
    max_shift_px: int = 0

    def __post_init__(self):
        if self.variants < 1:
            raise ValueError(f"augment.variants must be at least 1, got {self.variants}")
        if self.online and self.variants != 1:
            raise ValueError("augment.online draws a new transform every step: set augment.variants = 1")

    @property
    def active(self) -> bool:
        return self.online or self.variants > 1


def _rotate(image: jnp.ndarray, angle: jnp.ndarray, shift: jnp.ndarray) -> jnp.ndarray:
    """Rotate [H, W, C] about its centre by `angle` radians, then shift it by -`shift` (dy, dx) pixels
    (bilinear, edge values extended)."""
    h, w = image.shape[:2]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    yy, xx = yy + shift[0], xx + shift[1]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Inverse map: the output pixel p samples the input at R(-angle) (p + shift - c) + c.
    src_x = cos * (xx - cx) + sin * (yy - cy) + cx
    src_y = -sin * (xx - cx) + cos * (yy - cy) + cy
    sample = lambda ch: jax.scipy.ndimage.map_coordinates(ch, [src_y, src_x], order=1, mode="nearest")
    return jax.vmap(sample, in_axes=-1, out_axes=-1)(image)


def _frames_as_channels(x: jnp.ndarray) -> tuple[jnp.ndarray, tuple]:
    """[T, H, W, C] -> [H, W, T * C] (a map without a time axis is returned as it is), and the shape
    to restore."""
    if x.ndim == 3:
        return x, x.shape
    t, h, w, c = x.shape
    return x.transpose(1, 2, 0, 3).reshape(h, w, t * c), x.shape


def _restore_frames(x: jnp.ndarray, shape: tuple) -> jnp.ndarray:
    if len(shape) == 3:
        return x
    t, h, w, c = shape
    return x.reshape(h, w, t, c).transpose(2, 0, 1, 3)


def _transform_one(maps: dict, key, config: AugmentConfig, flow_keys) -> dict:
    k_flip, k_rot, k_noise, k_level = jax.random.split(key, 4)
    k_shift = jax.random.fold_in(key, 1)   # apart from the split, so the M3ENet variants stay as they were
    flip = jax.random.bernoulli(k_flip) & config.flip
    angle = jnp.deg2rad(config.max_rotation_deg) * jax.random.uniform(k_rot, minval=-1.0, maxval=1.0)
    shift = jax.random.randint(k_shift, (2,), -config.max_shift_px, config.max_shift_px + 1).astype(jnp.float32)
    level = config.max_noise * jax.random.uniform(k_level)
    out = {}
    for index, (name, x) in enumerate(sorted(maps.items())):
        if x.ndim == 1:            # a vector per sample (MADV-Net's AU coding): nothing spatial to transform
            out[name] = x
            continue
        if name in flow_keys and x.ndim != 3:
            raise ValueError(f"augment: flow map {name!r} must be [H, W, C] per sample, got {x.shape}")
        x, shape = _frames_as_channels(x)
        x = jnp.where(flip, x[:, ::-1], x)
        x = _rotate(x, angle, shift)
        if name in flow_keys:
            u = jnp.where(flip, -x[..., 0], x[..., 0])
            v = x[..., 1]
            # Rotating the field rotates its vectors by the same angle (image axes: x right, y down).
            u, v = jnp.cos(angle) * u - jnp.sin(angle) * v, jnp.sin(angle) * u + jnp.cos(angle) * v
            x = jnp.concatenate([u[..., None], v[..., None], x[..., 2:]], axis=-1)
        if config.max_noise > 0:
            std = jnp.std(x, axis=(0, 1), keepdims=True)
            x = x + level * std * jax.random.normal(jax.random.fold_in(k_noise, index), x.shape)
        out[name] = _restore_frames(x, shape)
    return out


def augment_batch(maps: dict, sample_ids, variant_ids, key, config: AugmentConfig, flow_keys=(), step=None) -> dict:
    """Augment each batch element of `maps` ({name: [B, H, W, C] or [B, T, H, W, C]}).

    variants mode: element b gets variant `variant_ids[b]` of sample `sample_ids[b]`; `key` is the run's
    augmentation key (the same in every fold, so a sample's variants do not depend on which fold trains
    on it). online mode: element b gets the transform of `fold_in(fold_in(key, step), b)`.
    """
    if config.online:
        step_key = jax.random.fold_in(key, step)
        keys = jax.vmap(lambda b: jax.random.fold_in(step_key, b))(jnp.arange(len(sample_ids)))
    else:
        keys = jax.vmap(lambda i, v: jax.random.fold_in(key, i * config.variants + v))(sample_ids, variant_ids)
    augmented = jax.vmap(lambda m, k: _transform_one(m, k, config, tuple(flow_keys)))(maps, keys)
    if config.online:
        return augmented
    keep = (variant_ids == 0)
    return {name: jnp.where(keep.reshape((-1,) + (1,) * (x.ndim - 1)), maps[name], x)
            for name, x in augmented.items()}
