"""Dual TV-L1 optical flow (Zach, Pock and Bischof 2007), the flow M3ENet uses (paper section 3.1).

This first version runs OpenCV's `cv2.optflow.DualTVL1OpticalFlow` on the host, one frame pair at a
time; the parameters are a frozen dataclass so they can key the feature cache. An accelerator
reimplementation will replace `tvl1_flow` behind the same signature.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class TVL1Params:
    """OpenCV Dual TV-L1 parameters. Defaults are OpenCV's own; no MER paper pins them down."""
    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5


def tvl1_flow(first: np.ndarray, second: np.ndarray, params: TVL1Params = TVL1Params()) -> np.ndarray:
    """Flow [H, W, 2] (u = horizontal, v = vertical, in pixels) that carries `first` onto `second`.

    Both images are single-channel [H, W] arrays of the same shape: uint8, or float in [0, 1].
    """
    import cv2

    first, second = _as_grey_uint8(first, "first"), _as_grey_uint8(second, "second")
    if first.shape != second.shape:
        raise ValueError(f"frame shapes differ: {first.shape} vs {second.shape}")
    solver = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=params.tau, lambda_=params.lambda_, theta=params.theta, nscales=params.nscales,
        warps=params.warps, epsilon=params.epsilon, innnerIterations=params.inner_iterations,
        outerIterations=params.outer_iterations, scaleStep=params.scale_step, gamma=params.gamma,
        medianFiltering=params.median_filtering)
    return solver.calc(first, second, None).astype(np.float32)


def _as_grey_uint8(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"{name} frame must be a single-channel [H, W] array, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    raise ValueError(f"{name} frame must be uint8 or float in [0, 1], got dtype {image.dtype}")
