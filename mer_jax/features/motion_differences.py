"""EDMDBN's inputs: entire motion (apex - onset) and detail motion (T consecutive frame differences).

Paper section 3.2: M_entire = F_apex - F_onset [H, W, 3]; M_detail = {F_2 - F_1, ..., F_{T+1} - F_T}
[T, H, W, 3] over the sequence normalised in time to T + 1 frames (section 3.1), with T = 8 and
H = W = 224 (section 4.3). Frames are RGB in [0, 1] standardised with the ImageNet mean and std
before the differences are taken, as the public code does (`FuseNetTransform`); the mean cancels in
a difference, so each difference is (later - earlier) / std per channel.

`detail` picks the T + 1 frames:
  clip       the onset..offset sequence resampled linearly in time to T + 1 frames (paper; default)
  keyframes  onset, apex, offset stacked as a 3-frame clip and resampled to T + 1 frames (the public
             code's `sampling_strategy=3`): its differences are [0, (A - O)/3 x3, (Off - A)/3 x3, 0],
             not inter-frame motion (docs/deviations.md, "EDMDBN detail motion").
Both follow `frame_ops.sample_positions` (linear, align_corners=False, as PyTorch's trilinear
`F.interpolate`); only the frames the interpolation reads are decoded. Computed on the host once per
corpus and config, then cached (`cache`). Augmentation (flip, crop, rotation) happens on the device in
the train step; it commutes with the differences, so augmenting them equals differencing augmented frames.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mer_jax.features import cache
from mer_jax.features.host_frames import linear_time_samples, resize_square
from mer_jax.features.normalise import IMAGENET_STD


DETAILS = ("clip", "keyframes")
NORMALISATIONS = ("imagenet", "none")


@dataclasses.dataclass(frozen=True)
class MotionDifferencesConfig:
    """size: side of every map (paper: 224). num_frames: T, the detail motion's differences (paper: 8).
    detail: `clip` (paper) or `keyframes` (public code), see the module docstring. normalise: `imagenet`
    (frames standardised by the ImageNet std before differencing; public code) or `none` (RGB in [0, 1])."""
    size: int = 224
    num_frames: int = 8
    detail: str = "clip"
    normalise: str = "imagenet"

    def __post_init__(self):
        if self.detail not in DETAILS:
            raise ValueError(f"features.detail must be one of {list(DETAILS)}, got {self.detail!r}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"features.normalise must be one of {list(NORMALISATIONS)}, got {self.normalise!r}")
        if self.num_frames < 1 or self.size < 1:
            raise ValueError(f"features.num_frames and features.size must be positive, got "
                             f"{self.num_frames} and {self.size}")


def clip_motion(corpus, i: int, config: MotionDifferencesConfig) -> tuple[np.ndarray, np.ndarray]:
    """(entire [S, S, 3], detail [T, S, S, 3]) of clip i, float32."""
    onset, apex, offset = int(corpus.onset[i]), int(corpus.apex[i]), int(corpus.offset[i])
    if not onset <= apex <= offset:
        raise ValueError(f"{corpus.name}: clip {corpus.clip[i]} has onset {onset}, apex {apex}, offset {offset} "
                         "out of order")
    if config.detail == "clip":
        sources = np.arange(onset, offset + 1)
    else:
        sources = np.array([onset, apex, offset])
    pairs, weights = linear_time_samples(len(sources), config.num_frames + 1)
    needed = sorted({onset, apex} | set(sources[np.unique(pairs)].tolist()))
    decoded = corpus.frames(i, needed)
    frame = {n: resize_square(f, config.size).astype(np.float32) / 255.0 for n, f in zip(needed, decoded)}
    scale = 1.0 / np.asarray(IMAGENET_STD, np.float32) if config.normalise == "imagenet" else np.ones(3, np.float32)
    lower, upper = sources[pairs[:, 0]], sources[pairs[:, 1]]
    resampled = np.stack([frame[a] + w * (frame[b] - frame[a]) for a, b, w in zip(lower, upper, weights)])
    entire = (frame[apex] - frame[onset]) * scale
    detail = np.diff(resampled, axis=0) * scale
    return entire.astype(np.float32), detail.astype(np.float32)


def compute_motion_differences(corpus, config: MotionDifferencesConfig, cache_dir=None,
                               progress: bool = True) -> dict[str, np.ndarray]:
    """{'entire': [N, S, S, 3], 'detail': [N, T, S, S, 3]} for every clip of `corpus`, cached."""
    from tqdm.auto import tqdm

    if not len(corpus):
        raise ValueError(f"{corpus.name}: no clips to compute motion differences for")

    def compute():
        entire, detail = zip(*(clip_motion(corpus, i, config) for i in tqdm(
            range(len(corpus)), desc=f"motion differences {corpus.name}", unit="clip", disable=not progress)))
        return {"entire": np.stack(entire), "detail": np.stack(detail)}

    return cache.load_or_compute(corpus, {"kind": "motion_differences", **dataclasses.asdict(config)}, compute,
                                 cache_dir)
