"""Frames decoded and resized on the host, before the features that run on the device."""
from __future__ import annotations

import numpy as np


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """`image` [H, W(, C)] resized to size x size: area averaging when shrinking, bilinear when enlarging."""
    import cv2

    interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)
