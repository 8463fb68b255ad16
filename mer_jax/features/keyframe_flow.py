"""Key-frame motion inputs: onset->apex TV-L1 flow u, v, optical strain, and grey onset/apex/offset.

These are M3ENet's inputs (paper section 3.1: frames resized to H x W = 48 x 48, Dual TV-L1 flow
between onset and apex, strain from the flow; section 3.2.1: onset, apex and offset frames).
Computed once per corpus and feature config on the host (OpenCV TV-L1), then cached on disk.
"""
from __future__ import annotations

import dataclasses
import logging

import jax
import numpy as np

from mer_jax.features import cache
from mer_jax.features.flow_tvl1 import TVL1Params, tvl1_flow
from mer_jax.features.strain import optical_strain

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class KeyframeFlowConfig:
    """size: side of every output map (paper: 48). flow_size: side the grey frames are resized to
    before the flow is computed (paper: the same 48; larger keeps more sub-pixel motion, and the
    flow is then resized to `size` with its vectors scaled accordingly)."""
    size: int = 48
    flow_size: int = 48
    tvl1: TVL1Params = TVL1Params()

    @classmethod
    def from_dict(cls, d: dict) -> "KeyframeFlowConfig":
        d = dict(d)
        return cls(tvl1=TVL1Params(**d.pop("tvl1", {})), **d)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def _sample_maps(frames_rgb: np.ndarray, config: KeyframeFlowConfig) -> tuple[np.ndarray, np.ndarray]:
    """(flow [S, S, 2], grey key frames [S, S, 3]) of one clip's onset, apex, offset RGB frames."""
    import cv2

    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0 for f in frames_rgb]
    onset, apex = (_resize(g, config.flow_size) for g in grey[:2])
    flow = tvl1_flow(onset, apex, config.tvl1)
    if config.flow_size != config.size:
        flow = _resize(flow, config.size) * (config.size / config.flow_size)
    keyframes = np.stack([_resize(g, config.size) for g in grey], axis=-1)
    return flow, keyframes


def compute_keyframe_flow(corpus, config: KeyframeFlowConfig, cache_dir=None,
                          progress: bool = True) -> dict[str, np.ndarray]:
    """{'flow': [N, S, S, 3] (u, v, strain), 'frames': [N, S, S, 3] (onset, apex, offset grey)}.

    Flow is in pixels of the S x S maps; grey frames are in [0, 1]. Results are cached under
    `cache_dir` (default `~/.cache/mer_jax/features`, or $MER_JAX_CACHE) keyed by corpus identity
    and `config`.
    """
    from tqdm.auto import tqdm

    key = cache.cache_key(corpus.identity(), {"kind": "keyframe_flow", **dataclasses.asdict(config)})
    path = (cache.default_cache_dir() if cache_dir is None else cache.Path(cache_dir)) / f"{key}.npz"
    clips = corpus.clip.tolist()
    cached = cache.load(path, clips)
    if cached is not None:
        log.info("features: loaded %s from cache %s", corpus.name, path)
        return cached
    flows, keyframes = [], []
    for i in tqdm(range(len(corpus)), desc=f"TV-L1 flow {corpus.name}", disable=not progress):
        rgb = corpus.frames(i, (corpus.onset[i], corpus.apex[i], corpus.offset[i]))
        flow, grey = _sample_maps(rgb, config)
        flows.append(flow)
        keyframes.append(grey)
    flow = np.stack(flows).astype(np.float32)
    strain = np.asarray(jax.jit(optical_strain)(flow))
    arrays = {"flow": np.concatenate([flow, strain[..., None]], axis=-1),
              "frames": np.stack(keyframes).astype(np.float32)}
    cache.save(path, arrays, clips)
    return arrays
