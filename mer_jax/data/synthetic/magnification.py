"""Training examples for the learned motion magnifier: (A, B, C, magnified target, alpha), ours.

Oh et al.'s generator (and the data of Adaptive DSTNet's pre-training) is not released
(reference/reference-implementations.md section 5), so this one is our own (docs/deviations.md, "Motion
magnifier"). Two kinds of example, each a scene rendered three times, A with no motion, B with motion d
and the target with alpha * d (the same renderer, so the target holds exactly alpha times B's motion):

- layered scenes (1 - `face_fraction` of the examples): a textured background under 1..`max_objects`
  textured foreground objects with soft alpha masks, composited back to front. Every texture is a sum
  of `num_waves` random plane waves (random direction, frequency log-uniform up to `max_frequency`
  cycles/px, amplitude ~ 1/frequency, a random colour per wave, scaled so that each channel's standard
  deviation is a contrast uniform in `texture_contrast`) and every mask a star-shaped blob
  (radius with random 2nd-4th harmonics, a 0.5 px soft edge), both evaluated analytically at the moved
  coordinates: a sub-pixel move is exact, with no interpolation and nothing at the border. Each object
  moves by its own translation of length uniform in `motion_px` in a random direction; the background
  moves independently with probability `background_motion_prob`, and in `background_only_prob` of the
  scenes only the background moves.
- face-like examples: the neutral face of a random synthetic-corpus identity (identity.py, the renderer
  of the corpus clips) backward-warped (bicubic, reflected border) by a smooth AU field of a random
  clip plan (clips.plan_clip: a partial emotion prototype), rescaled to a peak of length in `motion_px`:
  B(x) = F(x - d(x)), target(x) = F(x - alpha d(x)).
C has B's geometry and A's colours; B alone gets a colour perturbation (per-channel gain and offset up
to `colour_jitter`), so the texture/shape losses can ask texture(C) = texture(A) (texture ignores
motion) and shape(C) = shape(B) (shape ignores colour). Gaussian sensor noise of a std uniform in
`noise_std` is added to A, B and C, never to the target. alpha is uniform in `alpha_range`. Images are
float32 [N, S, S, 3] in [-1, 1]; every draw comes from `seed`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mer_jax.data.synthetic.clips import plan_clip
from mer_jax.data.synthetic.config import SyntheticConfig
from mer_jax.data.synthetic.identity import make_identity, render_face


@dataclasses.dataclass(frozen=True)
class MagnificationDataConfig:
    """Knobs of the generator (module docstring); lengths in pixels at `size`."""
    size: int = 64
    alpha_range: tuple[float, float] = (1.0, 10.0)
    motion_px: tuple[float, float] = (0.05, 1.0)   # length of each motion between A and B
    max_objects: int = 4
    background_motion_prob: float = 0.5
    background_only_prob: float = 0.2
    face_fraction: float = 0.25
    num_waves: int = 24
    max_frequency: float = 0.25                    # cycles per pixel (Nyquist is 0.5)
    texture_contrast: tuple[float, float] = (0.06, 0.2)   # each texture channel's std on the [0, 1] scale
    colour_jitter: float = 0.0
    noise_std: tuple[float, float] = (0.0, 0.0)    # on the [0, 1] intensity scale

    def __post_init__(self):
        _require(self.size >= 16 and self.size % 4 == 0, "size", f"must be a multiple of 4, >= 16, got {self.size}")
        for name in ("alpha_range", "motion_px", "noise_std", "texture_contrast"):
            value = tuple(float(v) for v in getattr(self, name))
            _require(len(value) == 2 and 0 <= value[0] <= value[1], name,
                     f"must be a range (low, high) with 0 <= low <= high, got {value}")
            object.__setattr__(self, name, value)
        _require(self.max_objects >= 1, "max_objects", "must be >= 1")
        for name in ("background_motion_prob", "background_only_prob", "face_fraction"):
            _require(0 <= getattr(self, name) <= 1, name, "must be a probability in [0, 1]")
        _require(self.num_waves >= 1, "num_waves", "must be >= 1")
        _require(0 < self.max_frequency <= 0.5, "max_frequency", "must be in (0, 0.5] cycles per pixel")
        _require(0 <= self.colour_jitter < 1, "colour_jitter", "must be in [0, 1)")


def _require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ValueError(f"MagnificationDataConfig.{field} {message}")


def _texture(rng: np.random.Generator, config: MagnificationDataConfig):
    """Parameters of one plane-wave texture: (frequency vectors [K, 2], phases [K], colour amplitudes
    [K, 3], mean colour [3])."""
    k = config.num_waves
    frequency = np.exp(rng.uniform(np.log(1.0 / config.size), np.log(config.max_frequency), k))
    angle = rng.uniform(0, 2 * np.pi, k)
    vectors = frequency[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    amplitude = (1.0 / frequency)[:, None] * rng.uniform(-1, 1, (k, 3))
    # each channel's standard deviation over random phases, sqrt(sum a^2 / 2), set to the texture's contrast
    amplitude *= rng.uniform(*config.texture_contrast) / np.sqrt((amplitude ** 2).sum(0) / 2).clip(1e-6)
    return vectors, rng.uniform(0, 2 * np.pi, k), amplitude, rng.uniform(0.3, 0.7, 3)


def _render_texture(params, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The texture at coordinates xs, ys [H, W] -> [H, W, 3] in [0, 1]."""
    vectors, phase, amplitude, mean = params
    waves = np.cos(2 * np.pi * (xs[..., None] * vectors[:, 0] + ys[..., None] * vectors[:, 1]) + phase)
    return mean + waves @ amplitude


def _blob(rng: np.random.Generator, size: int):
    """Parameters of one star-shaped mask: (centre [2], radius, harmonics [3, 2], rotation)."""
    centre = rng.uniform(0.15 * size, 0.85 * size, 2)
    radius = rng.uniform(0.08, 0.3) * size
    return centre, radius, rng.uniform(-0.15, 0.15, (3, 2)), rng.uniform(0, 2 * np.pi)


def _render_mask(params, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The blob's coverage in [0, 1] at coordinates xs, ys [H, W] -> [H, W, 1] (0.5 px soft edge)."""
    centre, radius, harmonics, rotation = params
    dx, dy = xs - centre[0], ys - centre[1]
    theta = np.arctan2(dy, dx) - rotation
    m = np.arange(2, 5)[:, None, None]
    boundary = radius * (1 + (harmonics[:, 0, None, None] * np.cos(m * theta)
                              + harmonics[:, 1, None, None] * np.sin(m * theta)).sum(0))
    return (1 / (1 + np.exp(-(boundary - np.hypot(dx, dy)) / 0.5)))[..., None]


def _direction(rng: np.random.Generator, length: float) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    return length * np.array([np.cos(angle), np.sin(angle)])


def _layered(rng: np.random.Generator, config: MagnificationDataConfig, alpha: float):
    """(A, B, target) [S, S, 3] in [0, 1] and B's motion [S, S, 2] of one layered scene."""
    ys, xs = np.mgrid[0:config.size, 0:config.size].astype(np.float64)
    background = _texture(rng, config)
    objects = [(_texture(rng, config), _blob(rng, config.size)) for _ in range(rng.integers(1, config.max_objects + 1))]
    background_only = rng.random() < config.background_only_prob
    move = lambda: _direction(rng, rng.uniform(*config.motion_px))
    d_background = move() if background_only or rng.random() < config.background_motion_prob else np.zeros(2)
    d_objects = [np.zeros(2) if background_only else move() for _ in objects]

    def render(scale: float) -> np.ndarray:
        d = scale * d_background
        image = _render_texture(background, xs - d[0], ys - d[1])
        for (texture, blob), d in zip(objects, d_objects):
            x, y = xs - scale * d[0], ys - scale * d[1]
            mask = _render_mask(blob, x, y)
            image = image * (1 - mask) + _render_texture(texture, x, y) * mask
        return image

    # each pixel of A moves with the layers that cover it there, composited like the colours
    motion = np.broadcast_to(d_background, (config.size, config.size, 2))
    for (_, blob), d in zip(objects, d_objects):
        mask = _render_mask(blob, xs, ys)
        motion = motion * (1 - mask) + d * mask
    return render(0.0), render(1.0), render(alpha), motion


def _face(rng: np.random.Generator, config: MagnificationDataConfig, alpha: float):
    """(A, B, target) [S, S, 3] in [0, 1] and B's motion [S, S, 2] of one face-like example."""
    import cv2

    corpus = SyntheticConfig(resolution=max(config.size, 32))
    face = render_face(make_identity(rng, glasses_prob=0.0), corpus.resolution)
    field = plan_clip(corpus, face, rng).displacement
    image = face.rgb.astype(np.float32) / 255.0
    if corpus.resolution != config.size:
        image = cv2.resize(image, (config.size, config.size), interpolation=cv2.INTER_AREA)
        field = cv2.resize(field, (config.size, config.size), interpolation=cv2.INTER_AREA)
    peak = np.linalg.norm(field, axis=-1).max()
    field = field * (rng.uniform(*config.motion_px) / peak if peak > 0 else 0.0)
    ys, xs = np.mgrid[0:config.size, 0:config.size].astype(np.float32)

    def render(scale: float) -> np.ndarray:
        return cv2.remap(image, (xs - scale * field[..., 0]).astype(np.float32),
                         (ys - scale * field[..., 1]).astype(np.float32), cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT)

    return image, render(1.0), render(alpha), field


def magnification_examples(config: MagnificationDataConfig, num: int,
                           seed: int | tuple[int, ...]) -> dict[str, np.ndarray]:
    """`num` examples: {"a", "b", "c", "target": float32 [N, S, S, 3] in [-1, 1], "alpha": float32 [N],
    "motion": float32 [N, S, S, 2], B's exact displacement (x, y) in pixels at each pixel of A (the target's
    is alpha times it)} (module docstring); the same (config, num, seed) gives the same examples. `seed` is an integer or a
    tuple of them (e.g. (run seed, step))."""
    rng = np.random.default_rng(np.random.SeedSequence([*np.atleast_1d(seed).tolist(), 0x6d61676e]))
    out = {k: np.empty((num, config.size, config.size, 3), np.float32) for k in ("a", "b", "c", "target")}
    motion = np.empty((num, config.size, config.size, 2), np.float32)
    alphas = rng.uniform(*config.alpha_range, num).astype(np.float32)
    for i in range(num):
        render = _face if rng.random() < config.face_fraction else _layered
        a, b, target, motion[i] = render(rng, config, float(alphas[i]))
        gain = 1 + rng.uniform(-config.colour_jitter, config.colour_jitter, 3)
        offset = rng.uniform(-config.colour_jitter, config.colour_jitter, 3) / 2
        noise = rng.uniform(*config.noise_std)
        for key, image in (("a", a), ("b", b * gain + offset), ("c", b), ("target", target)):
            if key != "target" and noise > 0:
                image = image + rng.normal(0, noise, image.shape)
            out[key][i] = np.clip(image, 0, 1) * 2 - 1
    return {**out, "alpha": alphas, "motion": motion}
