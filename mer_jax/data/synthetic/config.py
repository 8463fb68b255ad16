"""Knobs of the synthetic micro-expression corpus, validated on construction, and two presets.

Pixel quantities (`amplitude_px`, `head_motion_px`) are given at 128 px and scale with `resolution`.
"""
from __future__ import annotations

import dataclasses

# Emotion frequencies shaped like CASME II and the MEGC2019 composite: `others` and the negative
# emotions dominate; among the MEGC 3 classes negative : positive : surprise is about 59 : 24 : 17
# (the composite has 250 : 109 : 83).
DEFAULT_CLASS_WEIGHTS = {
    "others": 0.24, "happiness": 0.18, "disgust": 0.15, "surprise": 0.13, "repression": 0.09,
    "anger": 0.08, "sadness": 0.05, "fear": 0.04, "contempt": 0.04,
}
# Emotions the generator can draw (names from `taxonomy.EMOTIONS`; each has an AU recipe in
# `clips.py`); `positive` and `negative` are coarse labels of some real corpora, not expressions.
DRAWABLE_EMOTIONS = ("happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt",
                     "repression", "others")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Size, timing, label distribution, expression strength and nuisances of a synthetic corpus."""
    num_subjects: int = 12
    samples_per_subject: int = 12
    resolution: int = 128                 # frame side in pixels (square frames)
    num_frames: int = 30
    fps: float = 200.0                    # nominal frame rate, as CASME II and SAMM
    seed: int = 0
    class_weights: dict = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_CLASS_WEIGHTS), hash=False)
    amplitude_px: tuple[float, float] = (0.3, 3.0)   # apex peak AU displacement, uniform in range
    au_keep_prob: float = 0.75            # each prototype AU is kept with this probability
    distractor_prob: float = 0.3          # chance of one extra, weaker AU outside the prototype
    head_motion_px: float = 0.8           # largest head translation over a clip
    head_rotation_deg: float = 0.3        # largest in-plane head rotation over a clip
    illumination_drift: float = 0.03      # largest relative change of gain and of a lighting gradient
    noise_std: tuple[float, float] = (0.5, 2.0)  # Gaussian sensor noise (grey levels), per clip
    blink_prob: float = 0.2               # chance of a blink, at a random time, in a clip
    glasses_prob: float = 0.25            # chance that a subject wears glasses

    def __post_init__(self):
        """Validate every field; ranges become float tuples."""
        for name in ("num_subjects", "samples_per_subject"):
            _require(getattr(self, name) >= 1, name, "must be >= 1")
        _require(self.resolution >= 32, "resolution", "must be >= 32 pixels")
        _require(self.num_frames >= 8, "num_frames", "must be >= 8 (onset < apex < offset)")
        _require(self.fps > 0, "fps", "must be > 0")
        _require(self.seed >= 0, "seed", "must be a non-negative integer")
        for name in ("amplitude_px", "noise_std"):
            value = tuple(float(v) for v in getattr(self, name))
            _require(len(value) == 2 and 0 <= value[0] <= value[1], name,
                     f"must be a range (low, high) with 0 <= low <= high, got {value}")
            object.__setattr__(self, name, value)
        _require(self.amplitude_px[1] > 0, "amplitude_px", "upper bound must be > 0")
        for name in ("head_motion_px", "head_rotation_deg", "illumination_drift"):
            _require(getattr(self, name) >= 0, name, "must be >= 0")
        for name in ("au_keep_prob", "distractor_prob", "blink_prob", "glasses_prob"):
            _require(0 <= getattr(self, name) <= 1, name, "must be a probability in [0, 1]")
        unknown = set(self.class_weights).difference(DRAWABLE_EMOTIONS)
        _require(not unknown, "class_weights", f"has emotions {sorted(unknown)} the generator cannot draw; "
                                               f"expected some of {DRAWABLE_EMOTIONS}")
        _require(all(w >= 0 for w in self.class_weights.values()) and sum(self.class_weights.values()) > 0,
                 "class_weights", "must be non-negative with a positive sum")

    @property
    def scale(self) -> float:
        """Pixels at this resolution per pixel at 128 px."""
        return self.resolution / 128.0


def _require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ValueError(f"SyntheticConfig.{field} {message}")


# Sized so the paper's full M3ENet budget (50 epochs x 5 variants) runs LOSO on a 2-core CPU in minutes.
DEFAULT = SyntheticConfig()
# Small and fast, for tests. Its signal is clearer than DEFAULT's (full prototypes, no distractors,
# peak 1.5 to 3 px at 128 px) so that a short training run on its 60 clips can learn something.
SMOKE = SyntheticConfig(num_subjects=6, samples_per_subject=10, resolution=64, num_frames=16,
                        amplitude_px=(1.5, 3.0), au_keep_prob=1.0, distractor_prob=0.0)
