"""Synthetic micro-expression clips: plan one (every random draw), render it, iterate a corpus.

A clip's apex displacement is a weighted sum of AU fields (`action_units.py`) scaled to a micro-size
peak. Frame t backward-warps the neutral face (`identity.py`) by intensity(t) times that field plus a
small rigid head motion (cv2.remap, bilinear); the depth map gets the same warp. Backward warping by
x - d(x) inverts the forward motion d to first order, which is exact enough for sub-pixel, smooth d.
Illumination drift, Gaussian sensor noise and blinks are nuisances independent of the emotion.

Samples are deterministic in (seed, subject index, sample index): the identity is drawn from
(seed, subject) and the clip from (seed, subject, sample), so any subset of a corpus is consistent.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import cv2
import numpy as np

from mer_jax.data import taxonomy
from mer_jax.data.synthetic.action_units import INTENSITY, Activation, au_field, parse_code
from mer_jax.data.synthetic.config import DRAWABLE_EMOTIONS, SyntheticConfig
from mer_jax.data.synthetic.identity import Face, make_identity, render_face

DATASET = "synthetic"

# AU prototypes of the emotions, FACS codes from MADV-Net (papers/madv-net.txt) Table 1.
PROTOTYPES = {
    "happiness": "6+12",
    "sadness": "1+4+15",
    "surprise": "1+2+5B+26",
    "fear": "1+2+4+5+7+20+26",
    "anger": "4+5+7+23",
    "disgust": "9+15+16",
    "contempt": "R12A+R14A",
    # Repression (CASME II: an emotion held back) has no FACS prototype; CASME II codes its
    # repression clips mostly with AU14, AU15, AU17 and AU24, so we use the lip press 14+17+24.
    "repression": "14+17+24",
}
_PROTOTYPE_AUS = [{a.au for a in parse_code(code)} for code in PROTOTYPES.values()]


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """Every random choice of one clip; rendering it is deterministic."""
    emotion: str
    activations: tuple[Activation, ...]  # the AUs actually shown
    displacement: np.ndarray   # float32 [H, W, 2] AU displacement (dx, dy) at the apex, pixels
    onset: int
    apex: int
    offset: int
    intensity: np.ndarray      # float32 [T]: 0 outside onset..offset, 1 at the apex
    head_shift: np.ndarray     # float32 [T, 2] head translation (pixels)
    head_angle: np.ndarray     # float32 [T] in-plane head rotation (radians) about the face centre
    gain: np.ndarray           # float32 [T] global illumination gain
    gradient: np.ndarray       # float32 [T, 2] illumination change across the frame along x, y
    blink: np.ndarray          # float32 [T] eyelid closure in [0, 1]
    noise_std: float           # sensor noise (grey levels)
    noise_seed: int


def plan_clip(config: SyntheticConfig, face: Face, rng: np.random.Generator) -> ClipPlan:
    """Draw emotion, AUs, amplitude, timing and nuisances of one clip of `face`."""
    emotions = [e for e in DRAWABLE_EMOTIONS if config.class_weights.get(e, 0) > 0]
    weights = np.array([config.class_weights[e] for e in emotions], float)
    emotion = str(rng.choice(emotions, p=weights / weights.sum()))
    activations = _draw_activations(config, emotion, rng)
    landmarks, unit = face.identity.landmarks(face.resolution)
    displacement = sum(
        (INTENSITY[a.intensity] if a.intensity else rng.uniform(0.6, 1.0))
        * au_field(a, landmarks, unit, face.resolution) for a in activations)
    peak = float(np.linalg.norm(displacement, axis=-1).max())
    amplitude = rng.uniform(*config.amplitude_px) * config.scale
    displacement = (displacement * (amplitude / peak if peak > 0 else 0.0)).astype(np.float32)

    t = config.num_frames
    onset = int(rng.integers(0, int(0.15 * t) + 1))
    apex = onset + int(rng.integers(max(1, round(0.2 * t)), int(0.45 * t) + 1))
    offset = int(rng.integers(apex + max(1, round(0.2 * t)), t))
    frames = np.arange(t)
    rise = 0.5 - 0.5 * np.cos(np.pi * (frames - onset) / (apex - onset))
    fall = 0.5 + 0.5 * np.cos(np.pi * (frames - apex) / (offset - apex))
    intensity = np.where(frames <= apex, rise, fall) * ((frames >= onset) & (frames <= offset))

    head = rng.uniform(0, config.head_motion_px * config.scale)
    light_direction = rng.uniform(0, 2 * np.pi)
    return ClipPlan(
        emotion=emotion, activations=activations, displacement=displacement,
        onset=onset, apex=apex, offset=offset, intensity=intensity.astype(np.float32),
        head_shift=np.stack([head * _drift(rng, t), head * _drift(rng, t)], -1).astype(np.float32),
        head_angle=(np.deg2rad(rng.uniform(0, config.head_rotation_deg)) * _drift(rng, t)).astype(np.float32),
        gain=(1 + rng.uniform(0, config.illumination_drift) * _drift(rng, t)).astype(np.float32),
        gradient=(rng.uniform(0, config.illumination_drift) * _drift(rng, t)[:, None]
                  * [np.cos(light_direction), np.sin(light_direction)]).astype(np.float32),
        blink=_blink(config, rng), noise_std=float(rng.uniform(*config.noise_std)),
        noise_seed=int(rng.integers(2**31)))


def _draw_activations(config: SyntheticConfig, emotion: str, rng) -> tuple[Activation, ...]:
    """A partial prototype (each AU kept with `au_keep_prob`, at least one) plus maybe a weak
    distractor AU; for `others`, one or two AUs that are not all within any prototype."""
    if emotion == "others":
        while True:
            aus = rng.choice(taxonomy.AU_VOCAB, size=rng.integers(1, 3), replace=False)
            if not any(set(aus.tolist()) <= proto for proto in _PROTOTYPE_AUS):
                break
        sides = (None, "R", "L")
        return tuple(Activation(int(au), sides[rng.choice(3, p=[0.7, 0.15, 0.15])]) for au in aus)
    prototype = parse_code(PROTOTYPES[emotion])
    keep = rng.random(len(prototype)) < config.au_keep_prob
    if not keep.any():
        keep[rng.integers(len(prototype))] = True
    activations = [a for a, k in zip(prototype, keep) if k]
    if rng.random() < config.distractor_prob:
        shown = {a.au for a in prototype}
        pool = [au for au in taxonomy.AU_VOCAB if au not in shown]
        activations.append(Activation(int(rng.choice(pool)), intensity=str(rng.choice(["A", "B"]))))
    return tuple(activations)


def _drift(rng, num_frames: int) -> np.ndarray:
    """A smooth random curve over the clip, 0 at the first frame, peak magnitude 1."""
    u = np.linspace(0, 1, num_frames)
    k = np.arange(1, 4)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (3, 1))
    curve = (rng.normal(size=(3, 1)) / k * np.sin(k * np.pi * u / 2 + phase)).sum(0)
    curve -= curve[0]
    peak = np.abs(curve).max()
    return curve / peak if peak > 0 else curve


def _blink(config: SyntheticConfig, rng) -> np.ndarray:
    """Eyelid closure per frame: with `blink_prob`, one blink over a few frames at a random time."""
    t = config.num_frames
    closure = np.zeros(t, np.float32)
    if rng.random() < config.blink_prob:
        length = int(rng.integers(3, max(4, t // 3) + 1))
        start = int(rng.integers(-(length // 2), t - length // 2))
        frames = np.arange(t)
        inside = (frames >= start) & (frames <= start + length)
        closure[inside] = rng.uniform(0.6, 1.0) * np.sin(np.pi * (frames[inside] - start) / length) ** 2
    return closure


def render_clip(face: Face, plan: ClipPlan) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 [T, H, W, 3] and depth uint16 [T, H, W, 1] of a planned clip."""
    r = face.resolution
    y, x = np.mgrid[0:r, 0:r].astype(np.float32)
    cx, cy = (c * r for c in face.identity.center)
    opened, closed = face.rgb.astype(np.float32), face.closed_eyes.astype(np.float32)
    depth = face.depth.astype(np.float32)
    noise = np.random.default_rng(plan.noise_seed)
    num_frames = len(plan.intensity)
    frames = np.empty((num_frames, r, r, 3), np.uint8)
    depths = np.empty((num_frames, r, r, 1), np.uint16)
    for t in range(num_frames):
        # Neutral-pose position of the point seen at (x, y): undo the rigid head motion, then the AUs.
        cos, sin = np.cos(plan.head_angle[t]), np.sin(plan.head_angle[t])
        dx, dy = x - cx - plan.head_shift[t, 0], y - cy - plan.head_shift[t, 1]
        head_x, head_y = cx + cos * dx + sin * dy, cy - sin * dx + cos * dy
        map_x = head_x - plan.intensity[t] * plan.displacement[..., 0]
        map_y = head_y - plan.intensity[t] * plan.displacement[..., 1]
        source = opened
        if plan.blink[t] > 0:
            lid = face.eyelid_mask(float(plan.blink[t]))[..., None]
            source = opened * (1 - lid) + closed * lid
        image = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if face.glasses is not None:  # rigid: moves with the head, not with the AUs
            glasses = cv2.remap(face.glasses, head_x, head_y, cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
            alpha = glasses[..., 3:]
            image = image * (1 - alpha) + glasses[..., :3] * alpha
        light = plan.gain[t] + plan.gradient[t, 0] * (x / r - 0.5) + plan.gradient[t, 1] * (y / r - 0.5)
        image = image * light[..., None] + plan.noise_std * noise.standard_normal(image.shape, np.float32)
        frames[t] = np.clip(np.rint(image), 0, 255)
        warped = cv2.remap(depth, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        depths[t, ..., 0] = np.rint(warped)
    return frames, depths


def _rng(config: SyntheticConfig, stream: int, subject_index: int, sample_index: int = 0):
    """Independent generator per (seed, stream, subject, sample); stream 0 = identity, 1 = clip."""
    return np.random.default_rng(np.random.SeedSequence([config.seed, stream, subject_index, sample_index]))


def subject_id(subject_index: int) -> str:
    """Globally unique id `synthetic/s01` of the subject with 0-based index `subject_index`."""
    return f"{DATASET}/s{subject_index + 1:02d}"


def subject_face(config: SyntheticConfig, subject_index: int) -> Face:
    """The rendered identity of one subject."""
    _check_index(config, subject_index, 0)
    return render_face(make_identity(_rng(config, 0, subject_index), config.glasses_prob), config.resolution)


def clip_sample(config: SyntheticConfig, face: Face, subject_index: int, sample_index: int) -> dict:
    """One sample of the subject whose rendered identity is `face` (see `generate_sample`)."""
    _check_index(config, subject_index, sample_index)
    plan = plan_clip(config, face, _rng(config, 1, subject_index, sample_index))
    frames, depth = render_clip(face, plan)
    subject = subject_id(subject_index)
    return {
        "frames": frames, "depth": depth, "onset": plan.onset, "apex": plan.apex, "offset": plan.offset,
        "subject": subject, "dataset": DATASET, "clip": f"{subject}/c{sample_index + 1:03d}",
        "emotion": plan.emotion, "label_3class": taxonomy.megc3_label(plan.emotion),
        "aus": np.array(taxonomy.au_multi_hot({a.au for a in plan.activations}), np.uint8),
        "fps": float(config.fps),
    }


def generate_sample(config: SyntheticConfig, subject_index: int, sample_index: int) -> dict:
    """Sample `sample_index` of subject `subject_index` (0-based) as raw numpy arrays and scalars:
    frames uint8 [T, H, W, 3], depth uint16 [T, H, W, 1], onset/apex/offset, subject
    (`synthetic/s01`), dataset, clip (`synthetic/s01/c001`), emotion, label_3class, aus, fps."""
    return clip_sample(config, subject_face(config, subject_index), subject_index, sample_index)


def generate_subject(config: SyntheticConfig, subject_index: int) -> Iterator[dict]:
    """All samples of one subject, rendering its identity once."""
    face = subject_face(config, subject_index)
    for sample_index in range(config.samples_per_subject):
        yield clip_sample(config, face, subject_index, sample_index)


def generate_corpus(config: SyntheticConfig) -> Iterator[dict]:
    """Every sample of the corpus, subject by subject."""
    for subject_index in range(config.num_subjects):
        yield from generate_subject(config, subject_index)


def _check_index(config: SyntheticConfig, subject_index: int, sample_index: int) -> None:
    if not 0 <= subject_index < config.num_subjects:
        raise ValueError(f"subject_index {subject_index} outside 0..{config.num_subjects - 1}")
    if not 0 <= sample_index < config.samples_per_subject:
        raise ValueError(f"sample_index {sample_index} outside 0..{config.samples_per_subject - 1}")
