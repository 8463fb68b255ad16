"""Model inputs from a flow corpus's own precomputed flow images (the `precomputed_flow` builder).

Each sample of a flow corpus holds one uint8 image whose channels are u, v and optical strain (e.g.
the 28 x 28 images released with STSTNet and HTNet). By default (`channel_order="bgr"`) they are
decoded with the channels in the order `cv2.imread` gives them, i.e. B, G, R of the PNG (strain, v, u
for an image saved with R, G, B = u, v, strain): STSTNet's `main.py` and HTNet's `main_HTNet.py` read
the images with `cv2.imread` and feed that array unchanged, so networks trained there (and their
released weights) expect this order. `channel_order="rgb"` gives the file's R, G, B instead (u, v,
strain), for networks that read u and v by position (Off-ApexNet uses channels 0 and 1). Then each image is resized to `size` x `size` (INTER_AREA when shrinking, INTER_LINEAR otherwise;
no resize at the stored size) and multiplied by `value_scale`: 1/255 maps 0..255 to [0, 1]; 1.0 keeps
the raw pixel values, as STSTNet's `main.py` fed them.

Decoding a few hundred small PNGs takes milliseconds, so nothing is cached.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class PrecomputedFlowConfig:
    """size: side of the output maps. value_scale: factor applied to the 0..255 pixel values.
    channel_order: `bgr` (as cv2.imread gives them; STSTNet, HTNet) or `rgb` (the file's order)."""
    size: int = 28
    value_scale: float = 1.0 / 255.0
    channel_order: str = "bgr"

    def __post_init__(self):
        if self.channel_order not in ("bgr", "rgb"):
            raise ValueError(f"features.channel_order must be 'bgr' or 'rgb', got {self.channel_order!r}")
        if self.size <= 0:
            raise ValueError(f"features.size must be positive, got {self.size}")
        if not self.value_scale > 0:
            raise ValueError(f"features.value_scale must be positive, got {self.value_scale}")


def load_precomputed_flow(corpus, config: PrecomputedFlowConfig) -> dict[str, np.ndarray]:
    """{'flow': float32 [N, S, S, 3]}: the corpus's flow images in `config.channel_order`, resized to
    S = `config.size` and scaled by `config.value_scale`."""
    import cv2

    if corpus.kind != "flow":
        raise ValueError(f"features.kind='precomputed_flow' reads a flow corpus's own flow images, but "
                         f"{corpus.name} stores frames; use features.kind='keyframe_flow' (or 'auto') for it")
    size = config.size
    out = np.empty((len(corpus), size, size, 3), np.float32)
    for i in range(len(corpus)):
        image = corpus.flow_image(i).astype(np.float32)   # B, G, R of the file
        if config.channel_order == "rgb":
            image = image[..., ::-1]
        if image.shape[:2] != (size, size):
            shrink = image.shape[0] > size or image.shape[1] > size
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out[i] = image * config.value_scale
    return {"flow": out}
