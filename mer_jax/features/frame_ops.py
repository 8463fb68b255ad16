"""Frame maths on clips: differences, linear temporal resampling, key-frame interpolation.

A clip is an array [..., T, H, W, C] (or [..., T, H, W] with `time_axis=-3`); the leading dims are
batch dims. Variable-length clips are batched by padding them to a common T and passing `length`
(int array broadcastable to the batch dims): frames at t >= length are then ignored. Output lengths
are static, so every function jits once per shape. Results are float32.

Sampling convention of `interpolate_time` (EDMDBN public code, merlib `FixSequenceInterpolation`:
`F.interpolate(..., mode="trilinear", align_corners=False)` over (T, H, W) with H, W unchanged, i.e.
linear in time; reference-implementations.md section 1). With L input and T output frames, output
frame i samples the input at
- align_corners=False (default): s = (i + 0.5) * L / T - 0.5, clamped to [0, L - 1] (frame centres
  aligned, PyTorch's convention; the first and last output frames can repeat the end frames);
- align_corners=True: s = i * (L - 1) / (T - 1) (end frames aligned; s = 0 when T = 1);
and interpolates linearly between frames floor(s) and floor(s) + 1.
"""
from __future__ import annotations

import jax.numpy as jnp


def _axis(clip: jnp.ndarray, time_axis: int) -> int:
    """`time_axis` as a non-negative index of `clip`, with a clear error when it does not exist."""
    if not -clip.ndim <= time_axis < clip.ndim:
        raise ValueError(f"time_axis {time_axis} is out of range for a clip of shape {clip.shape}")
    return time_axis % clip.ndim


def _along_time(values: jnp.ndarray, clip: jnp.ndarray, axis: int) -> jnp.ndarray:
    """values [..., K] (batch dims broadcastable to clip.shape[:axis]) shaped to broadcast with clip."""
    values = jnp.asarray(values)
    if values.ndim - 1 > axis:
        raise ValueError(f"indices/weights of shape {values.shape} have more batch dims than the clip "
                         f"{clip.shape} has before its time axis {axis}")
    lead = (1,) * (axis - (values.ndim - 1))
    return values.reshape(lead + values.shape + (1,) * (clip.ndim - axis - 1))


def _per_clip(x) -> jnp.ndarray:
    """A per-clip int (scalar or batch-shaped array) as [..., 1] for `_along_time`."""
    return jnp.asarray(x, jnp.int32)[..., None]


def take_frames(clip: jnp.ndarray, indices, *, time_axis: int = -4) -> jnp.ndarray:
    """Frames `indices` ([K] or [..., K], per clip; clipped to the clip) of clip: [..., K, H, W(, C)]."""
    axis = _axis(clip, time_axis)
    idx = _along_time(jnp.asarray(indices, jnp.int32), clip, axis)
    return jnp.take_along_axis(jnp.asarray(clip, jnp.float32), idx, axis=axis, mode="clip")


def _valid(clip: jnp.ndarray, axis: int, size: int, limit) -> jnp.ndarray:
    """Mask [..., size, 1, ...] that is True where the time index t < limit (limit per clip)."""
    return _along_time(jnp.arange(size) < _per_clip(limit), clip, axis)


def frame_difference(clip: jnp.ndarray, *, length=None, time_axis: int = -4) -> jnp.ndarray:
    """Consecutive differences F_{t+1} - F_t: [..., T - 1, H, W(, C)].

    EDMDBN detail motion (paper section 3.2; public code `frames_mode=0`). With `length`, the
    differences that involve padding (t >= length - 1) are zero.
    """
    axis = _axis(clip, time_axis)
    clip = jnp.asarray(clip, jnp.float32)
    n = clip.shape[axis]
    diff = jnp.diff(clip, axis=axis)
    if length is None:
        return diff
    return jnp.where(_valid(diff, axis, n - 1, jnp.asarray(length) - 1), diff, 0.0)


def difference_to_frame(clip: jnp.ndarray, index=0, *, length=None, time_axis: int = -4) -> jnp.ndarray:
    """F_t - F_index for every frame t: [..., T, H, W(, C)]; `index` is per clip (e.g. the onset).

    EDMDBN public code `frames_mode=1` (every frame minus the first). With `length`, frames
    t >= length give zero.
    """
    axis = _axis(clip, time_axis)
    clip = jnp.asarray(clip, jnp.float32)
    diff = clip - take_frames(clip, _per_clip(index), time_axis=axis)
    if length is None:
        return diff
    return jnp.where(_valid(diff, axis, clip.shape[axis], length), diff, 0.0)


def frame_pair_difference(clip: jnp.ndarray, start, end, *, absolute: bool = False,
                          time_axis: int = -4) -> jnp.ndarray:
    """F_end - F_start [..., H, W(, C)], per clip indices; |F_end - F_start| with `absolute`.

    EDMDBN entire motion M_entire = F_apex - F_onset (paper section 3.2); DFR-Net difference map
    D = |I_apex - I_onset| (paper section 3.1.2, Eq. 8) with `absolute=True`.
    """
    axis = _axis(clip, time_axis)
    start, end = jnp.broadcast_arrays(jnp.asarray(start, jnp.int32), jnp.asarray(end, jnp.int32))
    pair = take_frames(clip, jnp.stack([start, end], -1), time_axis=axis)
    diff = jnp.take(pair, 1, axis=axis) - jnp.take(pair, 0, axis=axis)
    return jnp.abs(diff) if absolute else diff


def sample_positions(num_frames: int, length, *, align_corners: bool = False) -> jnp.ndarray:
    """Input positions s [..., num_frames] (float32) sampled by `interpolate_time` (module docstring)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    n_in = jnp.maximum(jnp.asarray(length, jnp.float32), 1.0)[..., None]
    i = jnp.arange(num_frames, dtype=jnp.float32)
    if align_corners:
        s = i * (n_in - 1.0) / max(num_frames - 1, 1)
    else:
        s = (i + 0.5) * n_in / num_frames - 0.5
    return jnp.clip(s, 0.0, n_in - 1.0)


def interpolate_time(clip: jnp.ndarray, num_frames: int, *, length=None, align_corners: bool = False,
                     time_axis: int = -4) -> jnp.ndarray:
    """Clip resampled linearly in time to `num_frames` frames: [..., num_frames, H, W(, C)].

    EDMDBN temporal normalisation (paper section 3.1: "linearly interpolating ... to T+1 frames";
    public code: trilinear `F.interpolate`, `align_corners=False`, the default here). Frames at
    t >= `length` (per clip; default all T) are never read.
    """
    axis = _axis(clip, time_axis)
    clip = jnp.asarray(clip, jnp.float32)
    n_in = clip.shape[axis] if length is None else jnp.minimum(jnp.asarray(length), clip.shape[axis])
    s = sample_positions(num_frames, n_in, align_corners=align_corners)
    i0 = jnp.floor(s).astype(jnp.int32)
    i1 = jnp.minimum(i0 + 1, jnp.maximum(jnp.asarray(n_in, jnp.int32), 1)[..., None] - 1)
    w = _along_time(s - i0, clip, axis)
    f0 = take_frames(clip, i0, time_axis=axis)
    f1 = take_frames(clip, i1, time_axis=axis)
    return f0 + w * (f1 - f0)


def interpolate_keyframes(clip: jnp.ndarray, keyframe_indices, num_frames: int, *,
                          align_corners: bool = False, time_axis: int = -4) -> jnp.ndarray:
    """Key frames of clip (e.g. onset, apex, offset; [K] or [..., K] per clip) resampled linearly to
    `num_frames` frames: [..., num_frames, H, W(, C)].

    EDMDBN (paper section 3.1; public code `sampling_strategy=3` then `TimeInterpolation(T + 1)`):
    the K key frames are stacked as a K-frame clip, equally spaced whatever their frame numbers,
    then resampled as `interpolate_time` does. With onset, apex, offset and 9 frames
    (align_corners=False) the 8 consecutive differences are
    [0, (A - O)/3 x3, (Off - A)/3 x3, 0] (reference-implementations.md section 1).
    """
    axis = _axis(clip, time_axis)
    keyframes = take_frames(clip, keyframe_indices, time_axis=axis)
    return interpolate_time(keyframes, num_frames, align_corners=align_corners, time_axis=axis)
