"""MADV-Net's inputs (papers/madv-net.txt sections 3.1-3.2): the texture clip, the depth clip and the AU vector.

  texture  float32 [N, T, S, S, 3]  RGB in [0, 1]: the onset..offset sequence resampled linearly in time to T
                                    frames (`frame_ops.sample_positions`, as EDMDBN's detail clip), each S x S
  depth    float32 [N, T, S, S, 1]  per-pixel depth of the same T frames as relative inverse depth (near = 1,
                                    far = 0), min-max normalised over the clip
  au       float32 [N, A]           the clip's multi-hot AU coding over taxonomy.AU_VOCAB
The paper gets its depth from Depth Anything (section 3.1, its reference [36]) and names no frame count, side
or normalisation (ours: docs/deviations.md, "MADV-Net inputs"). `depth` picks the source:
  stored          the corpus's own depth maps (the synthetic corpus renders true depth, in mm)
  depth_anything  Depth Anything V2 on every frame (mer_jax/features/depth.py), from the user's checkpoint
  none            no depth: the depth path is off (the model must be built with it disabled)
Depth Anything predicts relative inverse depth up to an affine map, so both sources are brought to the same
per-clip [0, 1] inverse-depth scale. The AU vector is the annotation's multi-hot coding: no corpus mer_jax
reads gives the AU intensities the paper's Eq. 3 difference needs. Computed once per corpus and config, cached.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mer_jax.features import cache
from mer_jax.features.host_frames import linear_time_samples, resize_square

DEPTH_SOURCES = ("stored", "depth_anything", "none")


@dataclasses.dataclass(frozen=True)
class MADVNetInputsConfig:
    """size: S, the side of every frame; num_frames: T; depth: the depth source (module docstring);
    depth_input_size: the side Depth Anything reads (a multiple of 14; upstream uses 518)."""
    size: int = 112
    num_frames: int = 8
    depth: str = "stored"
    depth_input_size: int = 518

    def __post_init__(self):
        if self.depth not in DEPTH_SOURCES:
            raise ValueError(f"features.depth must be one of {list(DEPTH_SOURCES)}, got {self.depth!r}")
        if self.size < 1 or self.num_frames < 1:
            raise ValueError(f"features.size and features.num_frames must be positive, got {self.size} and "
                             f"{self.num_frames}")
        if self.depth_input_size % 14:
            raise ValueError(f"features.depth_input_size must be a multiple of 14 (the ViT patch), got "
                             f"{self.depth_input_size}")


def inverse_depth(distance: np.ndarray) -> np.ndarray:
    """Distances (> 0) -> relative inverse depth 1 / d min-max normalised over the whole array to [0, 1]."""
    return _unit_range(1.0 / np.maximum(distance.astype(np.float32), 1e-6))


def _unit_range(x: np.ndarray) -> np.ndarray:
    low, high = float(x.min()), float(x.max())
    return ((x - low) / (high - low) if high > low else np.zeros_like(x)).astype(np.float32)


def _resample(frames: dict, sources: np.ndarray, pairs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    lower, upper = sources[pairs[:, 0]], sources[pairs[:, 1]]
    return np.stack([frames[a] + w * (frames[b] - frames[a]) for a, b, w in zip(lower, upper, weights)])


def clip_inputs(corpus, i: int, config: MADVNetInputsConfig, estimate_depth=None) -> tuple[np.ndarray, np.ndarray]:
    """(texture [T, S, S, 3], depth [T, S, S, 1] or None) of clip i; `estimate_depth(frames uint8 [T, H, W, 3])
    -> [T, H, W, 1]` gives relative inverse depth for the `depth_anything` source."""
    onset, offset = int(corpus.onset[i]), int(corpus.offset[i])
    if not onset <= offset:
        raise ValueError(f"{corpus.name}: clip {corpus.clip[i]} has onset {onset} after offset {offset}")
    sources = np.arange(onset, offset + 1)
    pairs, weights = linear_time_samples(len(sources), config.num_frames)
    needed = sorted(set(sources[np.unique(pairs)].tolist()))
    decoded = corpus.frames(i, needed)
    unit = lambda image: resize_square(image, config.size).astype(np.float32) / 255.0
    texture = _resample({n: unit(f) for n, f in zip(needed, decoded)}, sources, pairs, weights)
    if config.depth == "none":
        return texture, None
    if config.depth == "stored":
        maps = inverse_depth(corpus.depth(i, needed))
    else:
        maps = _unit_range(np.asarray(estimate_depth(decoded), np.float32))
    resized = {n: resize_square(m[..., 0], config.size)[..., None] for n, m in zip(needed, maps)}
    return texture, _resample(resized, sources, pairs, weights)


def compute_madvnet_inputs(corpus, config: MADVNetInputsConfig, estimate_depth=None, weights_id: str = "",
                           cache_dir=None, progress: bool = True) -> dict[str, np.ndarray]:
    """{'texture', 'depth' (unless `depth` is none), 'au'} for every clip of `corpus` (module docstring),
    cached under the config and, for estimated depth, `weights_id` (a hash of the depth network's weights)."""
    from tqdm.auto import tqdm

    if not len(corpus):
        raise ValueError(f"{corpus.name}: no clips to compute MADV-Net inputs for")
    if config.depth == "depth_anything" and estimate_depth is None:
        raise ValueError("features.depth='depth_anything' needs the Depth Anything network "
                         "(features.depth_weights)")

    def compute():
        texture, depth = zip(*(clip_inputs(corpus, i, config, estimate_depth) for i in tqdm(
            range(len(corpus)), desc=f"MADV-Net inputs {corpus.name}", unit="clip", disable=not progress)))
        arrays = {"texture": np.stack(texture), "au": corpus.aus.astype(np.float32)}
        return arrays if config.depth == "none" else {**arrays, "depth": np.stack(depth)}

    key = {"kind": "madvnet_inputs", **dataclasses.asdict(config),
           "depth_weights": weights_id if config.depth == "depth_anything" else ""}
    return cache.load_or_compute(corpus, key, compute, cache_dir)
