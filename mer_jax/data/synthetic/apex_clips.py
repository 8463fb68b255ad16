"""Synthetic face clips with a known apex frame, for testing apex spotting.

Each clip is a procedural face (`identity.py`, no glasses) placed on the face-alignment template of
`mer_jax.data.face_align` (eye centres at `AlignConfig.template_eyes()`), so it looks like a clip of an
aligned corpus. An emotion's AU prototype (`clips.PROTOTYPES`, fields from `action_units.py`) moves the
brows, eyes and mouth with a raised-cosine time profile: 0 at the onset (frame 0), 1 at the apex, back
to `offset_level` at the offset (last frame). The apex sits anywhere in `apex_position` of the clip,
and the rise and fall have different lengths, so neither the midpoint nor the centroid of the motion is
the apex. Nuisances: a small rigid head drift, an illumination gain drift and Gaussian sensor noise;
frames are grey uint8, as corpora store them.

The output pixel p shows the neutral face at q - intensity(t) * d(q), where q is p taken back to the
rendered face by the alignment similarity (and the head drift) and d is the AU displacement there
(backward warping, as `clips.render_clip`).
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from mer_jax.data.face_align import AlignConfig, similarity_from_points
from mer_jax.data.synthetic.action_units import INTENSITY, au_field, parse_code
from mer_jax.data.synthetic.clips import PROTOTYPES
from mer_jax.data.synthetic.identity import make_identity, render_face


@dataclasses.dataclass(frozen=True)
class ApexClipConfig:
    """Size, timing, motion strength and nuisances of the clips; ranges are drawn uniformly per clip."""
    resolution: int = 96                               # side of the aligned square crop, pixels
    num_frames: tuple[int, int] = (12, 40)             # clip length range, inclusive
    apex_position: tuple[float, float] = (0.2, 0.8)    # apex / (num_frames - 1)
    amplitude_px: tuple[float, float] = (2.0, 4.0)     # peak AU displacement at the apex, crop pixels
    offset_level: tuple[float, float] = (0.0, 0.3)     # intensity left at the offset (1 = apex)
    noise_std: tuple[float, float] = (0.5, 1.0)        # sensor noise, grey levels
    head_motion_px: float = 0.1                        # largest rigid head translation over a clip
    illumination_drift: float = 0.03                  # largest relative gain change over a clip
    seed: int = 0

    def __post_init__(self):
        if self.resolution < 32:
            raise ValueError(f"ApexClipConfig.resolution must be >= 32 pixels, got {self.resolution}")
        low, high = self.num_frames
        if not 3 <= low <= high:
            raise ValueError(f"ApexClipConfig.num_frames must be a range (low, high) with 3 <= low <= high, "
                             f"got {self.num_frames}")
        for name, lowest, highest in (("apex_position", 0.0, 1.0), ("amplitude_px", 0.0, np.inf),
                                      ("offset_level", 0.0, 1.0), ("noise_std", 0.0, np.inf)):
            low, high = getattr(self, name)
            if not lowest <= low <= high <= highest:
                raise ValueError(f"ApexClipConfig.{name} must be a range (low, high) within "
                                 f"[{lowest}, {highest}], got {(low, high)}")
        if self.head_motion_px < 0 or self.illumination_drift < 0:
            raise ValueError("ApexClipConfig.head_motion_px and illumination_drift must be >= 0")


@dataclasses.dataclass(frozen=True)
class ApexClip:
    """One clip: onset = frame 0, offset = the last frame, and the true apex."""
    frames: np.ndarray      # uint8 [T, S, S] grey
    apex: int               # index of the frame where the intensity peaks
    intensity: np.ndarray   # float32 [T] expression intensity, 1 at the apex
    emotion: str            # whose AU prototype moves the face


def intensity_profile(num_frames: int, apex: int, offset_level: float) -> np.ndarray:
    """float32 [T]: raised cosine 0 -> 1 over frames 0..apex, then 1 -> offset_level over apex..T-1."""
    t = np.arange(num_frames, dtype=np.float64)
    rise = 0.5 - 0.5 * np.cos(np.pi * t / max(apex, 1))
    fall_phase = np.pi * (t - apex) / max(num_frames - 1 - apex, 1)
    fall = offset_level + (1 - offset_level) * (0.5 + 0.5 * np.cos(fall_phase))
    return np.where(t <= apex, rise, fall).astype(np.float32)


def _drift(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """A smooth random curve over the clip, 0 at frame 0, peak magnitude 1."""
    u = np.linspace(0, 1, num_frames)
    curve = np.sin(np.pi * u * rng.uniform(0.3, 1.0) + rng.uniform(0, 2 * np.pi))
    curve -= curve[0]
    peak = np.abs(curve).max()
    return curve / peak if peak > 0 else curve


def apex_clip(config: ApexClipConfig, index: int) -> ApexClip:
    """Clip `index` of the stream `config.seed`: deterministic in (seed, index)."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, index]))
    s = config.resolution
    face = render_face(make_identity(rng, glasses_prob=0.0), s)
    marks, unit = face.identity.landmarks(s)
    # Similarity from the rendered face to the template crop (image-left eye = the subject's right).
    to_crop = similarity_from_points(np.stack([marks["eye_r"], marks["eye_l"]]),
                                     AlignConfig(output_size=s).template_eyes())
    to_face = cv2.invertAffineTransform(to_crop).astype(np.float32)
    scale = float(np.sqrt(abs(np.linalg.det(to_crop[:, :2]))))

    emotion = str(rng.choice(sorted(PROTOTYPES)))
    field = sum((INTENSITY[a.intensity] if a.intensity else 1.0) * au_field(a, marks, unit, s)
                for a in parse_code(PROTOTYPES[emotion]))
    peak = float(np.linalg.norm(field, axis=-1).max())
    # In rendered-face pixels, scaled so that the displacement seen in the crop peaks at the amplitude.
    field = (field * rng.uniform(*config.amplitude_px) / (peak * scale)).astype(np.float32)

    num_frames = int(rng.integers(config.num_frames[0], config.num_frames[1] + 1))
    low, high = (int(round(p * (num_frames - 1))) for p in config.apex_position)
    apex = int(rng.integers(max(low, 1), max(high, 1) + 1))   # never the onset itself
    intensity = intensity_profile(num_frames, apex, rng.uniform(*config.offset_level))
    shift = (rng.uniform(0, config.head_motion_px) / np.sqrt(2)
             * np.stack([_drift(rng, num_frames), _drift(rng, num_frames)], -1)).astype(np.float32)
    gain = 1 + rng.uniform(0, config.illumination_drift) * _drift(rng, num_frames)
    noise_std = rng.uniform(*config.noise_std)

    grey = cv2.cvtColor(face.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)
    frames = np.empty((num_frames, s, s), np.uint8)
    for t in range(num_frames):
        # Crop pixel -> rendered-face point under the head drift, then undo the AU motion there.
        qx = to_face[0, 0] * (x - shift[t, 0]) + to_face[0, 1] * (y - shift[t, 1]) + to_face[0, 2]
        qy = to_face[1, 0] * (x - shift[t, 0]) + to_face[1, 1] * (y - shift[t, 1]) + to_face[1, 2]
        motion = cv2.remap(field, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image = cv2.remap(grey, qx - intensity[t] * motion[..., 0], qy - intensity[t] * motion[..., 1],
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image = gain[t] * image + noise_std * rng.standard_normal(image.shape, np.float32)
        frames[t] = np.clip(np.rint(image), 0, 255)
    return ApexClip(frames=frames, apex=apex, intensity=intensity, emotion=emotion)


def apex_clips(config: ApexClipConfig, num_clips: int) -> list[ApexClip]:
    """Clips 0..num_clips-1 of the stream `config.seed`."""
    return [apex_clip(config, i) for i in range(num_clips)]
