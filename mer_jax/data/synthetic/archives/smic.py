"""SMIC fixture archive: synthetic clips in the layout of `SMIC_all_cropped` / `SMIC_all_raw`.

    SMIC_all_cropped/HS/s1/micro/negative/s1_ne_01/reg_image012000.bmp   (variants hs, vis, nir)
    SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image012000.bmp           (variants *_raw)

Subject folders and clip names are unpadded, frame numbers are absolute indices zero-padded to 6 digits
(5- and 6-digit numbers both occur), frames are BMP. SMIC has no annotation file: labels are folder
names. With `quirks=True` the HS archive has SMIC's known gaps (reference/corpora.md section 3, merlib):
no `s18_sur_03` folder, 2 frames missing from `s3_po_08`, 1 from each of `s3_sur_01`, `s3_sur_05` and
`s3_ne_16`; and a `non_micro/` folder that is not part of the corpus.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mer_jax.data.synthetic.archives.common import clip_frames, write_frames

CODES = {"negative": "ne", "positive": "po", "surprise": "sur"}
_EMOTION_OF = {"ne": "negative", "po": "positive", "sur": "surprise",
               "0": "negative", "1": "positive", "2": "surprise"}   # MEGC2019 class codes too

# Known gaps of the HS archive (see tfds_builders/smic QUIRKS): absent folder, frames missing.
ABSENT = ("s18_sur_03",)
MISSING_FRAMES = {"s3_po_08": 2, "s3_sur_01": 1, "s3_sur_05": 1, "s3_ne_16": 1}

# Default HS fixture: 5 subjects, every label, every quirk (s18_sur_03 is listed but not written).
DEFAULT_HS = [
    ("s1", "s1_ne_01"), ("s1", "s1_ne_02"), ("s1", "s1_po_01"), ("s1", "s1_sur_01"),
    ("s2", "s2_ne_01"), ("s2", "s2_po_01"), ("s2", "s2_po_02"), ("s2", "s2_sur_01"),
    ("s3", "s3_ne_01"), ("s3", "s3_ne_16"), ("s3", "s3_po_08"), ("s3", "s3_sur_01"), ("s3", "s3_sur_05"),
    ("s18", "s18_sur_01"), ("s18", "s18_sur_02"), ("s18", "s18_sur_03"),
    ("s20", "s20_ne_01"), ("s20", "s20_po_01"),
]
# VIS / NIR: 3 subjects, every label, no known quirks.
DEFAULT_NORMAL_SPEED = [
    ("s1", "s1_ne_01"), ("s1", "s1_po_01"), ("s1", "s1_sur_01"),
    ("s2", "s2_ne_01"), ("s2", "s2_sur_01"),
    ("s3", "s3_po_01"), ("s3", "s3_sur_02"),
]


def _subject(value) -> str:
    match = re.search(r"(\d+)$", str(value).strip())
    if match is None:
        raise ValueError(f"SMIC subject {value!r} has no number")
    return f"s{int(match.group(1))}"


def _clip(value) -> tuple[str, str, str]:
    """`s01_ne_01` or `s1_ne_01` -> (`s1`, `s1_ne_01`, emotion)."""
    match = re.fullmatch(r"s(\d+)_(ne|po|sur)_(\d+)", str(value).strip(), re.IGNORECASE)
    if match is None:
        raise ValueError(f"SMIC clip {value!r} does not look like s<n>_<ne|po|sur>_<kk>")
    subject, code, number = int(match.group(1)), match.group(2).lower(), match.group(3)
    return f"s{subject}", f"s{subject}_{code}_{number}", _EMOTION_OF[code]


def on_canvas(frames: np.ndarray, size: tuple[int, int], background: int = 120) -> np.ndarray:
    """Paste square face frames [T, R, R, 3] in the middle of a flat `size` = (width, height) frame: a
    small stand-in for an uncropped recording, whose face the aligner's OpenCV detector finds."""
    t, r = frames.shape[:2]
    width, height = size
    if r > min(width, height):
        raise ValueError(f"face of {r} px does not fit a {width}x{height} frame")
    canvas = np.full((t, height, width, 3), background, np.uint8)
    y, x = (height - r) // 2, (width - r) // 2
    canvas[:, y:y + r, x:x + r] = frames
    return canvas


def write_smic(root, *, samples: list[dict] | None = None, variant: str = "hs", quirks: bool = True,
               num_frames: int = 5, resolution: int | None = None, raw_size: tuple[int, int] = (160, 120),
               non_micro: bool = True) -> dict:
    """Write a SMIC archive under `root` (the builder's manual_dir).

    samples: [{"subject", "clip", "emotion"}] in SMIC's own forms (`s1`, `s1_ne_01`, `negative`) or the
        MEGC2019 ground truth's (`s01`, `s01_ne_01`, `0`); emotion may be left out (taken from the clip
        name). None: a small default fixture (HS: every quirk; VIS/NIR: none).
    variant: `hs`, `vis`, `nir` (SMIC_all_cropped, `reg_image` frames) or `hs_raw` ... (SMIC_all_raw,
        `image` frames).
    quirks: write the HS archive's known gaps (see module docstring). Only HS has them.
    resolution: side of the synthetic face; default 32 (cropped) or 64 (raw).
    raw_size: (width, height) of raw frames, the face pasted in the middle (`on_canvas`).

    Returns {"root", "folder" (modality folder), "variant", "clips" (written: subject, clip, emotion,
    frames on disk, first, last, folder), "absent" (requested but not written), "missing" (clip ->
    missing frame numbers), "num_samples", "subjects"}.
    """
    root = Path(root)
    modality, _, raw = variant.partition("_")
    if modality not in ("hs", "vis", "nir") or raw not in ("", "raw"):
        raise ValueError(f"unknown SMIC variant {variant!r}")
    folder = root / ("SMIC_all_raw" if raw else "SMIC_all_cropped") / modality.upper()
    prefix = "image" if raw else "reg_image"
    hs_quirks = quirks and modality == "hs"
    resolution = resolution or (64 if raw else 32)
    if samples is None:
        pairs = DEFAULT_HS if modality == "hs" else DEFAULT_NORMAL_SPEED
        samples = [{"subject": s, "clip": c} for s, c in pairs]
    clips, absent, missing = [], [], {}
    subject_index: dict[str, int] = {}
    for k, sample in enumerate(samples):
        subject, clip, emotion = _clip(sample["clip"])
        if _subject(sample.get("subject", subject)) != subject:
            raise ValueError(f"SMIC sample {sample}: clip does not belong to the subject")
        given = str(sample.get("emotion", emotion)).strip().lower()
        if _EMOTION_OF.get(given, given) != emotion:
            raise ValueError(f"SMIC sample {sample}: emotion does not match the clip name")
        if hs_quirks and clip in ABSENT:
            absent.append(clip)
            continue
        index = subject_index.setdefault(subject, len(subject_index))
        first = 12000 + 150 * k if k % 4 else 100000 + 37 * k   # absolute indices, 5 and 6 digits
        count = MISSING_FRAMES.get(clip, 0) if hs_quirks else 0
        length = max(num_frames, count + 3) if count else num_frames   # room for inner gaps
        numbers = list(range(first, first + length))
        gone = []
        if count:  # inner frames (the first and last stay): onset..offset keeps its length
            middle = length // 2
            gone = numbers[middle - count // 2: middle - count // 2 + count]
            missing[clip] = gone
        frames = clip_frames(index, k, emotion, length, resolution=resolution)
        if raw:
            frames = on_canvas(frames, raw_size)
        kept = [(f, n) for f, n in zip(frames, numbers) if n not in gone]
        clip_dir = folder / subject / "micro" / emotion / clip
        write_frames(clip_dir, [f for f, _ in kept], [f"{prefix}{n:06d}.bmp" for _, n in kept])
        clips.append({"subject": subject, "clip": clip, "emotion": emotion, "folder": clip_dir,
                      "frames": [n for _, n in kept], "first": numbers[0], "last": numbers[-1]})
    if non_micro and clips:  # not part of the corpus: the builder ignores it
        subject = clips[0]["subject"]
        frames = clip_frames(0, 99, "negative", 3, resolution=resolution)
        if raw:
            frames = on_canvas(frames, raw_size)
        write_frames(folder / subject / "non_micro" / "negative" / f"{subject}_ne_99", frames,
                     [f"{prefix}{n:06d}.bmp" for n in range(500, 503)])
    return {"root": root, "folder": folder, "variant": variant, "clips": clips, "absent": absent,
            "missing": missing, "num_samples": len(clips), "subjects": sorted({c["subject"] for c in clips})}
