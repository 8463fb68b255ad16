"""Frame pairs with known optical flow: for testing and benchmarking flow estimators.

The second frame is the first moved by a known flow field (second(x) = first(x - flow(x)), bicubic):
translations, an in-plane rotation and smooth local bumps like AU motion, amplitudes 0.2 to 3 px, with
sensor noise, on a smooth random texture. Frames are uint8, as corpora store them.
"""
from __future__ import annotations

import numpy as np


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    image = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 1.5 * size / 64)
    return (image - image.min()) / (image.max() - image.min())


def _fields(size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    bump = np.exp(-((xs - c * 0.8) ** 2 + (ys - c * 1.1) ** 2) / (2 * (size / 6) ** 2)).astype(np.float32)
    full = lambda value: np.full_like(xs, value)
    angle = np.radians(2.0)
    return [(full(0.2), full(-0.1)), (full(1.3), full(0.6)), (full(-3.0), full(1.0)),
            (-(ys - c) * angle, (xs - c) * angle), (0.5 * bump, -0.3 * bump), (3.0 * bump, 1.5 * bump)]


def known_flow_pairs(num_pairs: int = 6, size: int = 64, noise: float = 0.01, seed: int = 0):
    """(first uint8 [N, S, S], second uint8 [N, S, S], flow float32 [N, S, S, 2]); the six kinds of field
    (translations of 0.2, 1.4 and 3.2 px, a 2 degree rotation, a weak and a strong bump) repeat."""
    import cv2

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    fields = _fields(size)
    firsts, seconds, flows = [], [], []
    for k in range(num_pairs):
        fx, fy = fields[k % len(fields)]
        first = _texture(rng, size)
        second = cv2.remap(first, (xs - fx).astype(np.float32), (ys - fy).astype(np.float32), cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
        second = second + rng.normal(0, noise, second.shape).astype(np.float32)
        firsts.append(np.clip(np.rint(first * 255), 0, 255).astype(np.uint8))
        seconds.append(np.clip(np.rint(second * 255), 0, 255).astype(np.uint8))
        flows.append(np.stack([fx, fy], -1))
    return np.stack(firsts), np.stack(seconds), np.stack(flows).astype(np.float32)


def endpoint_error(flow: np.ndarray, truth: np.ndarray, border: int = 4) -> np.ndarray:
    """Mean endpoint error per pair [N] away from a `border` px frame margin (where estimators guess)."""
    inner = (slice(None), slice(border, -border), slice(border, -border))
    return np.linalg.norm((flow - truth)[inner], axis=-1).mean(axis=(1, 2))
