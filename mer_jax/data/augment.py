"""On-device augmentation by flip, rotation and additive noise (M3ENet paper section 4.1.1).

The paper turns every training sample into five variants. Here variant v of sample i is a fixed
random transform drawn from `fold_in(key, i * variants + v)`; variant 0 is the sample itself, so an
epoch over (sample, variant) pairs sees exactly `variants` versions of each sample, as offline
augmentation would, without storing them. All maps of a sample share one transform. Arrays named
in `flow_keys` hold a flow field in channels 0 and 1 (u, v): a horizontal flip negates u and a
rotation rotates the (u, v) vectors as well as the grid.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """variants: versions of each sample per epoch (paper: 5; 1 = no augmentation).
    max_rotation_deg: rotations are uniform in +-this (the paper gives no range; our choice).
    max_noise: additive Gaussian noise with std uniform in [0, max_noise] x the map's own std."""
    variants: int = 5
    flip: bool = True
    max_rotation_deg: float = 8.0
    max_noise: float = 0.1


def _rotate(image: jnp.ndarray, angle: jnp.ndarray) -> jnp.ndarray:
    """Rotate [H, W, C] about its centre by `angle` radians (bilinear, edge values extended)."""
    h, w = image.shape[:2]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Inverse map: the output pixel p samples the input at R(-angle) (p - c) + c.
    src_x = cos * (xx - cx) + sin * (yy - cy) + cx
    src_y = -sin * (xx - cx) + cos * (yy - cy) + cy
    sample = lambda ch: jax.scipy.ndimage.map_coordinates(ch, [src_y, src_x], order=1, mode="nearest")
    return jax.vmap(sample, in_axes=-1, out_axes=-1)(image)


def _transform_one(maps: dict, key, config: AugmentConfig, flow_keys) -> dict:
    k_flip, k_rot, k_noise, k_level = jax.random.split(key, 4)
    flip = jax.random.bernoulli(k_flip) & config.flip
    angle = jnp.deg2rad(config.max_rotation_deg) * jax.random.uniform(k_rot, minval=-1.0, maxval=1.0)
    level = config.max_noise * jax.random.uniform(k_level)
    out = {}
    for index, (name, x) in enumerate(sorted(maps.items())):
        x = jnp.where(flip, x[:, ::-1], x)
        x = _rotate(x, angle)
        if name in flow_keys:
            u = jnp.where(flip, -x[..., 0], x[..., 0])
            v = x[..., 1]
            # Rotating the field rotates its vectors by the same angle (image axes: x right, y down).
            u, v = jnp.cos(angle) * u - jnp.sin(angle) * v, jnp.sin(angle) * u + jnp.cos(angle) * v
            x = jnp.concatenate([u[..., None], v[..., None], x[..., 2:]], axis=-1)
        std = jnp.std(x, axis=(0, 1), keepdims=True)
        x = x + level * std * jax.random.normal(jax.random.fold_in(k_noise, index), x.shape)
        out[name] = x
    return out


def augment_batch(maps: dict, sample_ids, variant_ids, key, config: AugmentConfig, flow_keys=()) -> dict:
    """Apply variant `variant_ids[b]` of sample `sample_ids[b]` to each batch element of `maps`.

    maps: {name: [B, H, W, C]}; sample_ids, variant_ids: int [B]; `key` is the run's augmentation
    key (the same in every fold, so a sample's variants do not depend on which fold trains on it).
    """
    keys = jax.vmap(lambda i, v: jax.random.fold_in(key, i * config.variants + v))(sample_ids, variant_ids)
    augmented = jax.vmap(lambda m, k: _transform_one(m, k, config, tuple(flow_keys)))(maps, keys)
    keep = (variant_ids == 0)
    return {name: jnp.where(keep.reshape((-1,) + (1,) * (x.ndim - 1)), maps[name], x)
            for name, x in augmented.items()}
