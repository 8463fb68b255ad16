"""Frames decoded and resized on the host, before the features that run on the device."""
from __future__ import annotations

import numpy as np


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """`image` [H, W(, C)] resized to size x size: area averaging when shrinking, bilinear when enlarging."""
    import cv2

    interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def linear_time_samples(num_sources: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(index pairs [num_frames, 2] into `num_sources` frames in time order, weights [num_frames]): frame k of
    the clip resampled linearly to `num_frames` frames is (1 - w_k) source[a_k] + w_k source[b_k], at the
    positions of `frame_ops.sample_positions` (PyTorch's linear interpolation, align_corners=False)."""
    from mer_jax.features.frame_ops import sample_positions

    positions = np.asarray(sample_positions(num_frames, num_sources))
    lower = np.floor(positions).astype(int)
    upper = np.minimum(lower + 1, num_sources - 1)
    return np.stack([lower, upper], -1), (positions - lower).astype(np.float32)
