"""Facial action units (FACS) as smooth, localised 2-D skin displacement fields.

Each AU is a few Gaussian-weighted control points anchored to an identity's landmarks; every point
carries the direction the skin there moves when the muscle contracts. A point is written once for
the subject's right side and mirrored for the left; a point on a midline landmark with no lateral
offset is shared by both sides. Offsets and Gaussian widths are in face half widths; directions are
(outward, up), outward meaning away from the facial midline. Each AU field is normalised so that
its largest displacement is 1 pixel at full intensity.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from mer_jax.data import taxonomy


@dataclasses.dataclass(frozen=True)
class Point:
    """One control point: landmark, offset from it, skin motion, Gaussian width."""
    anchor: str                          # landmark name without its `_r`/`_l` suffix
    motion: tuple[float, float]          # (outward, up)
    sigma: float
    offset: tuple[float, float] = (0.0, 0.0)  # (outward, up)

    @property
    def midline(self) -> bool:
        return self.offset[0] == 0.0 and self.motion[0] == 0.0 and self.anchor in _MIDLINE


_MIDLINE = {"nose_root", "nose_tip", "mouth", "upper_lip", "lower_lip", "chin"}

AU_POINTS: dict[int, tuple[Point, ...]] = {
    # AU1 inner brow raiser (frontalis, pars medialis): inner brow ends and the forehead above them up.
    1: (Point("brow_inner", (0.1, 1.0), 0.12), Point("brow_inner", (0.0, 0.6), 0.15, (0.0, 0.2)),
        Point("brow_mid", (0.0, 0.35), 0.10)),
    # AU2 outer brow raiser (frontalis, pars lateralis): outer brow up, arching the brow.
    2: (Point("brow_outer", (0.0, 1.0), 0.12), Point("brow_mid", (0.0, 0.5), 0.10),
        Point("brow_outer", (0.0, 0.5), 0.15, (0.0, 0.2))),
    # AU4 brow lowerer (corrugator, depressor supercilii, procerus): brows down and drawn together.
    4: (Point("brow_inner", (-0.7, -0.8), 0.12), Point("brow_mid", (-0.35, -0.5), 0.10),
        Point("nose_root", (0.0, -0.3), 0.10, (0.0, 0.1))),
    # AU5 upper lid raiser (levator palpebrae superioris): upper eyelid up.
    5: (Point("upper_lid", (0.0, 1.0), 0.06),),
    # AU6 cheek raiser (orbicularis oculi, pars orbitalis): cheek and lower lid up, crow's feet in.
    6: (Point("cheek", (-0.15, 1.0), 0.16), Point("lower_lid", (0.0, 0.5), 0.07),
        Point("eye_corner_outer", (-0.5, 0.3), 0.08, (0.12, 0.0))),
    # AU7 lid tightener (orbicularis oculi, pars palpebralis): lower lid up, upper lid slightly down.
    7: (Point("lower_lid", (0.0, 1.0), 0.06), Point("upper_lid", (0.0, -0.35), 0.06),
        Point("eye_corner_outer", (-0.3, 0.0), 0.06)),
    # AU9 nose wrinkler (levator labii superioris alaeque nasi): nose sides and wings up, inner brows down.
    9: (Point("ala", (0.0, 1.0), 0.09), Point("nose_root", (-0.1, 0.7), 0.10, (0.12, -0.25)),
        Point("brow_inner", (0.0, -0.3), 0.10), Point("upper_lip", (0.0, 0.35), 0.10, (0.1, 0.0))),
    # AU10 upper lip raiser (levator labii superioris): upper lip up, nasolabial furrow deepened.
    10: (Point("upper_lip", (0.05, 1.0), 0.10, (0.15, 0.0)), Point("ala", (0.1, 0.4), 0.10, (0.05, -0.15))),
    # AU12 lip corner puller (zygomaticus major): lip corners up and out.
    12: (Point("mouth_corner", (0.7, 0.7), 0.12), Point("cheek", (0.35, 0.45), 0.15, (0.05, -0.35))),
    # AU14 dimpler (buccinator): lip corners tightened and drawn back, cheek bunched beside them.
    14: (Point("mouth_corner", (0.6, 0.15), 0.09), Point("mouth_corner", (-0.35, 0.0), 0.07, (0.2, 0.0))),
    # AU15 lip corner depressor (depressor anguli oris): lip corners down.
    15: (Point("mouth_corner", (0.15, -1.0), 0.10), Point("mouth_corner", (0.1, -0.5), 0.12, (0.05, -0.25))),
    # AU16 lower lip depressor (depressor labii inferioris): lower lip down and out.
    16: (Point("lower_lip", (0.25, -1.0), 0.09, (0.18, 0.0)), Point("lower_lip", (0.0, -0.5), 0.08)),
    # AU17 chin raiser (mentalis): chin boss and lower lip pushed up.
    17: (Point("chin", (0.0, 1.0), 0.18), Point("lower_lip", (0.0, 0.6), 0.10)),
    # AU20 lip stretcher (risorius with platysma): lip corners pulled sideways.
    20: (Point("mouth_corner", (1.0, -0.1), 0.11), Point("mouth_corner", (0.4, -0.1), 0.14, (0.2, -0.15))),
    # AU23 lip tightener (orbicularis oris): lips narrowed and thinned, corners drawn in.
    23: (Point("mouth_corner", (-0.5, 0.0), 0.08), Point("upper_lip", (0.0, -0.3), 0.08),
         Point("lower_lip", (0.0, 0.3), 0.08)),
    # AU24 lip pressor (orbicularis oris): lips pressed together.
    24: (Point("upper_lip", (0.0, -0.7), 0.09), Point("lower_lip", (0.0, 0.7), 0.09),
         Point("mouth_corner", (-0.2, 0.0), 0.08)),
    # AU25 lips part (depressor labii inferioris, relaxed mentalis): lower lip down, upper lip slightly up.
    25: (Point("lower_lip", (0.0, -0.7), 0.09), Point("upper_lip", (0.0, 0.25), 0.08)),
    # AU26 jaw drop (masseter and temporalis relaxed): chin, lower lip and lower face down.
    26: (Point("chin", (0.0, -1.0), 0.30), Point("lower_lip", (0.0, -0.75), 0.16),
         Point("mouth_corner", (0.0, -0.3), 0.14)),
}

# Relative strength of the FACS intensity letters (A trace ... E maximum).
INTENSITY = {"A": 0.3, "B": 0.5, "C": 0.7, "D": 0.85, "E": 1.0}


@dataclasses.dataclass(frozen=True)
class Activation:
    """One AU in a FACS code such as `R12A`: number, side (`R`, `L` or None for both), intensity letter."""
    au: int
    side: str | None = None
    intensity: str | None = None


def parse_code(code: str) -> tuple[Activation, ...]:
    """Parse a FACS code like `1+2+5B+26` or `R12A+R14A`."""
    out = []
    for part in code.split("+"):
        match = re.fullmatch(r"([RL]?)(\d+)([A-E]?)", part.strip())
        if match is None or int(match[2]) not in AU_POINTS:
            raise ValueError(f"bad AU {part!r} in FACS code {code!r}; expected e.g. 12, R12A, 5B "
                             f"with an AU from {taxonomy.AU_VOCAB}")
        out.append(Activation(int(match[2]), match[1] or None, match[3] or None))
    return tuple(out)


def au_field(activation: Activation, landmarks: dict[str, np.ndarray], unit: float,
             resolution: int) -> np.ndarray:
    """float32 [H, W, 2] displacement (dx, dy) of one AU, peak magnitude 1 pixel."""
    y, x = np.mgrid[0:resolution, 0:resolution].astype(np.float32)
    field = np.zeros((resolution, resolution, 2), np.float32)
    sides = ("r", "l") if activation.side is None else (activation.side.lower(),)
    for point in AU_POINTS[activation.au]:
        for side in (sides[:1] if point.midline else sides):
            outward = -1.0 if side == "r" else 1.0
            name = point.anchor if point.anchor in _MIDLINE else f"{point.anchor}_{side}"
            centre = landmarks[name] + unit * np.array([outward * point.offset[0], -point.offset[1]])
            motion = np.array([outward * point.motion[0], -point.motion[1]], np.float32)
            sigma = point.sigma * unit
            weight = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma * sigma))
            field += weight[..., None] * motion
    peak = float(np.linalg.norm(field, axis=-1).max())
    return field / peak if peak > 0 else field
