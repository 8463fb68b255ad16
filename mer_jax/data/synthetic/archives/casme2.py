"""CASME II fixture archive: synthetic clips written exactly as the licensed CASME II copy ships them.

Layout under `root` (what a user passes as manual_dir; reference/corpora.md section 1):
    CASME2-coding-20140508.xlsx              header on row 1: Subject | Filename | <blank> | OnsetFrame |
                                             ApexFrame | OffsetFrame | <blank> | Action Units |
                                             Estimated Emotion; Subject as an integer (1, not sub01)
    Cropped/sub01/EP02_01f/reg_img46.jpg     variant `cropped`: onset..offset only (or Cropped/Cropped/...)
    CASME2_RAW_selected/sub01/EP02_01f/img46.jpg   variant `raw_selected`: onset..offset, whole frame
    CASME2-RAW/sub01/EP02_01f/img1.jpg       variant `raw`: the full clip numbered from 1
Frame numbers are unpadded. Cropped frames are small face crops (default 32 px); raw frames are a
168 x 224 canvas (a quarter of the real 640 x 480 in each side, minus a little) with a 128 px
procedural face the OpenCV Haar cascades find (`FACE_POOL`), so the `raw*` variants' face alignment
can run on it.

Known quirks placed by default (`quirks=True`; the builder's quirk table must fix every one):
- ApexFrame `/` (about 21 of 255 real rows) in the rows meb lists as missing an apex (29, 35, 43, 51,
  60, ... by 0-based data row); each such clip spans meb's optical-flow apex estimate for that row.
- Data row 60 (meb's "Mistake in file, change offset to 91"): apex `/`, frames on disk end at 91,
  annotated offset `191` (the real wrong value is unknown; any offset that does not fit the disk).
- `Cropped/sub16/EP01_08` misses frames (merlib): a middle frame is left out (variant `cropped` only).
- Irregular file names `EP01_2` (sub03), `EP09f` (sub09), `EP06_02_01` (sub07) as in the real corpus.
- AU strings with L/R prefixes and AUs outside the project's vocabulary (`R12+R15`, `L4`, `4+38`).
- Lower-case emotions including `repression`, `others`, `fear`, `sadness`.

The default fixture has 65 rows (the 255 real rows' label distribution in miniature: others 25,
disgust 16, happiness 8, repression 7, surprise 6, sadness 2, fear 1) over 10 subjects, sub10 with
`others` only (like the real sub10 and sub18, absent from MEGC2019). `samples=` writes exactly the
clips asked for (e.g. the 145 CASME II clips of the MEGC2019 ground truth), with the row quirks at
the same row indices.
"""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from mer_jax.data.synthetic.archives.common import clip_frames, write_frames, write_sheet

HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
          "Estimated Emotion"]
ANNOTATION = "CASME2-coding-20140508.xlsx"
VARIANT_DIRS = {"cropped": "Cropped", "raw_selected": "CASME2_RAW_selected", "raw": "CASME2-RAW"}
VARIANTS = tuple(VARIANT_DIRS)

# meb (datasets.py, Casme2): ApexFrame "/" rows (0-based data rows of its 256-row coding file) and its
# optical-flow apex estimates; the fixture puts "/" in those of them it has rows for.
MEB_MISSING_APEX = {29: 279, 35: 68, 43: 77, 45: 81, 51: 166, 53: 100, 60: 78, 117: 187, 118: 89,
                    126: 80, 136: 88, 147: 134, 155: 231, 168: 53, 170: 329, 177: 111, 202: 91,
                    203: 103, 234: 98, 237: 153, 238: 98}
ROW60 = {"row": 60, "offset": 91, "annotated_offset": 191, "onset": 76}   # meb: row 60 offset -> 91
MISSING_FRAMES_CLIP = ("sub16", "EP01_08")                                 # merlib: Cropped frames missing

# Procedural identities (seed 0) whose 128 px face OpenCV's Haar cascades find with both eyes
# (checked on the 168 x 224 raw canvas); fixture subject n gets FACE_POOL[n % len(FACE_POOL)].
FACE_POOL = (0, 3, 4, 5, 7, 11, 13, 14, 16, 18, 20, 21, 22, 23, 24, 26, 27)
RAW_SIZE = (168, 224)   # H, W
RAW_FACE = 128

# AU strings of each emotion, as the coding file writes them (L/R prefixes, AUs beyond the vocabulary).
_AUS = {
    "happiness": ["6+12", "R12", "12", "L12+R6"],
    "disgust": ["4+9", "L10", "4+7", "9+4+38"],
    "repression": ["14", "15+17", "R14", "17+24"],
    "surprise": ["1+2", "R1+R2", "1+2+25", "5"],
    "others": ["4", "L4", "7", "4+38", "R4+43"],
    "fear": ["1+4+20"],
    "sadness": ["1+4+15", "15"],
}

# Default fixture: (subject number, clip name, emotion) in coding-file order (sorted by subject).
# Disgust, repression, happiness and surprise clips are real MEGC2019 ground-truth clips of the same
# class; others, fear and sadness clips have names the ground truth does not list.
_DEFAULT = {
    1: ["EP02_01f:happiness", "EP03_02:others", "EP04_02:others", "EP04_03:others", "EP19_01:others",
        "EP19_05f:disgust", "EP19_06f:disgust"],
    2: ["EP01_11f:repression", "EP02_04f:repression", "EP03_02f:disgust", "EP08_04:others",
        "EP09_01:happiness", "EP11_01:surprise", "EP13_04:surprise", "EP15_04:others"],
    3: ["EP01_2:surprise", "EP07_04:disgust", "EP09_03:repression", "EP13_03:others", "EP18_03:fear"],
    5: ["EP03_01:happiness", "EP03_06:surprise", "EP04_03f:others", "EP06_03:others", "EP08_01:others",
        "EP12_03f:surprise", "EP19_01:others"],
    7: ["EP01_01:disgust", "EP06_02_01:disgust", "EP06_02_02:disgust", "EP18_01:others", "EP18_03:others"],
    9: ["EP02_02f:others", "EP06_01f:repression", "EP06_02f:happiness", "EP09f:happiness", "EP13_02:others",
        "EP17_08:disgust"],
    10: ["EP02_01f:others", "EP13_01:others", "EP15_03:others", "EP19_04:others"],
    16: ["EP01_05:happiness", "EP01_08:disgust", "EP04_02f:happiness", "EP11_01:others", "EP13_01:others"],
    17: ["EP01_06:happiness", "EP01_13:surprise", "EP02_01:disgust", "EP02_03:repression", "EP02_09:others",
         "EP03_02:disgust", "EP05_01:others", "EP05_09:disgust", "EP11_01:repression", "EP12_03:disgust",
         "EP15_01f:others"],
    26: ["EP07_28:others", "EP09_04:disgust", "EP15_01:sadness", "EP16_01:repression", "EP18_46:sadness",
         "EP18_50:disgust", "EP18_51:disgust"],
}


def default_samples() -> list[dict]:
    """The default fixture's rows as `samples` dicts, in coding-file order."""
    out = []
    for subject, clips in _DEFAULT.items():
        for entry in clips:
            clip, emotion = entry.split(":")
            out.append({"subject": subject, "clip": clip, "emotion": emotion})
    return out


def _subject_number(value) -> int:
    digits = "".join(c for c in str(value) if c.isdigit())
    if not digits:
        raise ValueError(f"sample subject {value!r} has no number")
    return int(digits)


def _clip_span(i: int, sample: dict, quirks: bool) -> tuple[int, int, int, str]:
    """(onset, offset on disk, apex, ApexFrame cell) of data row i."""
    if "onset" in sample:
        onset, offset = int(sample["onset"]), int(sample["offset"])
        apex = int(sample.get("apex", (onset + offset) // 2))
        return onset, offset, apex, str(apex)
    if quirks and i == ROW60["row"]:
        onset, offset = ROW60["onset"], ROW60["offset"]
        return onset, offset, MEB_MISSING_APEX[i], "/"
    if quirks and i in MEB_MISSING_APEX:
        estimate = MEB_MISSING_APEX[i]
        return estimate - 2, estimate + 2, estimate, "/"
    length = 3 + i % 3                      # 3..5 frames
    onset = 10 + (i * 37) % 180             # real onsets are frame numbers of the full clip (from 1)
    apex = onset + 1 + i % (length - 1) if length > 2 else onset
    return onset, onset + length - 1, apex, str(apex)


def write_casme2(root, *, samples: list[dict] | None = None, variant: str = "cropped", quirks: bool = True,
                 annotation: str = ANNOTATION, nested_cropped: bool = False, resolution: int = 32,
                 raw_tail: int = 2) -> dict:
    """Write a CASME II archive under `root` and describe it.

    samples: [{"subject": 1 | "01" | "sub01", "clip": "EP02_01f", "emotion": "happiness"}, ...] in the
        coding file's raw forms, optionally with "onset", "apex", "offset" (frame numbers) and "aus";
        None: the default 65-row fixture.
    variant: `cropped`, `raw_selected`, `raw`, or `all` (every folder set, same clips and numbers).
    quirks: place the known quirks (module docstring); False writes a clean archive.
    nested_cropped: write `Cropped/Cropped/...` as some copies do.
    raw_tail: frames after the offset in the full `raw` clips (they start at img1).

    Returns {"root", "annotation", "variants", "num_samples", "subjects", "emotion_counts", "rows",
    "excluded", "apex_slash_rows", "row_offset_fix", "missing_frames"}: each of "rows" has the row index,
    subject (`sub01`), clip, emotion, onset, apex and offset after the builder's default fixes
    (midpoint apex for "/"), the number of frames stored (offset - onset + 1), the written cells, and
    the fixes the builder must record.
    """
    root = Path(root)
    variants = VARIANTS if variant == "all" else (variant,)
    unknown = set(variants).difference(VARIANTS)
    if unknown:
        raise ValueError(f"unknown CASME II variant(s) {sorted(unknown)}; expected {VARIANTS} or 'all'")
    samples = default_samples() if samples is None else list(samples)
    rows, described = [], []
    missing_frames = None
    row_offset_fix = None
    for i, sample in enumerate(samples):
        number = _subject_number(sample["subject"])
        subject, clip, emotion = f"sub{number:02d}", str(sample["clip"]), str(sample["emotion"])
        onset, offset, meb_apex, apex_cell = _clip_span(i, sample, quirks)
        annotated_offset = offset
        fixes = []
        if apex_cell == "/":
            fixes.append("apex_midpoint")
        if quirks and i == ROW60["row"] and "onset" not in sample:
            annotated_offset = ROW60["annotated_offset"]
            fixes.append("row_offset")
            row_offset_fix = {"row": i, "clip": f"{subject}/{clip}", "annotated": annotated_offset,
                              "fixed": offset}
        apex = (onset + offset) // 2 if apex_cell == "/" else meb_apex
        aus = sample.get("aus") or _AUS.get(emotion.lower(), ["4"])[i % len(_AUS.get(emotion.lower(), ["4"]))]
        rows.append([number, clip, None, onset, apex_cell if apex_cell == "/" else int(apex_cell),
                     annotated_offset, None, aus, emotion])
        numbers = list(range(onset, offset + 1))
        drop = []
        if quirks and (subject, clip) == MISSING_FRAMES_CLIP and len(numbers) >= 3:
            drop = [numbers[len(numbers) // 2]]
            missing_frames = {"clip": f"{subject}/{clip}", "frames": drop, "variants": ["cropped"]}
            if "cropped" in variants:
                fixes.append("fill_missing")
        _write_clip(root, variants, subject, number, i, clip, emotion, numbers, drop, nested_cropped,
                    resolution, raw_tail)
        described.append({"row": i, "subject": subject, "clip": clip, "emotion": emotion, "onset": onset,
                          "apex": apex, "offset": offset, "num_frames": offset - onset + 1,
                          "apex_cell": apex_cell, "meb_apex": meb_apex if apex_cell == "/" else None,
                          "annotated_offset": annotated_offset, "aus": aus, "fixes": fixes})
    write_sheet(root / annotation, HEADER, rows)
    return {
        "root": root, "annotation": root / annotation, "variants": list(variants),
        "num_samples": len(described), "subjects": sorted({r["subject"] for r in described}),
        "emotion_counts": dict(collections.Counter(r["emotion"] for r in described)),
        "rows": described, "excluded": [],
        "apex_slash_rows": [r["row"] for r in described if r["apex_cell"] == "/"],
        "row_offset_fix": row_offset_fix, "missing_frames": missing_frames,
    }


def _write_clip(root: Path, variants, subject: str, number: int, i: int, clip: str, emotion: str,
                numbers: list[int], drop: list[int], nested_cropped: bool, resolution: int,
                raw_tail: int) -> None:
    face = FACE_POOL[number % len(FACE_POOL)]
    drawn = _drawable(emotion)
    if "cropped" in variants:
        base = root / "Cropped" / ("Cropped" if nested_cropped else "")
        frames = clip_frames(face, i, drawn, len(numbers), resolution=resolution)
        keep = [k for k, n in enumerate(numbers) if n not in drop]
        write_frames(base / subject / clip, frames[keep], [f"reg_img{numbers[k]}.jpg" for k in keep])
    if "raw_selected" in variants or "raw" in variants:
        frames = _raw_frames(clip_frames(face, i, drawn, len(numbers), resolution=RAW_FACE), number)
        if "raw_selected" in variants:
            write_frames(root / "CASME2_RAW_selected" / subject / clip, frames,
                         [f"img{n}.jpg" for n in numbers])
        if "raw" in variants:
            before, after = numbers[0] - 1, raw_tail
            full = np.concatenate([np.repeat(frames[:1], before, 0), frames, np.repeat(frames[-1:], after, 0)])
            write_frames(root / "CASME2-RAW" / subject / clip, full,
                         [f"img{n}.jpg" for n in range(1, len(full) + 1)])


def _drawable(emotion: str) -> str:
    emotion = emotion.lower()
    return "others" if emotion in ("other", "others") else emotion


def _raw_frames(faces: np.ndarray, number: int) -> np.ndarray:
    """The face clip pasted into a raw-sized canvas, slightly off centre by subject."""
    height, width = RAW_SIZE
    out = np.empty((len(faces), height, width, 3), np.uint8)
    out[:] = (118, 121, 124)
    y = (height - RAW_FACE) // 2 + (number % 3) - 1
    x = (width - RAW_FACE) // 2 + 3 * ((number % 5) - 2)
    out[:, y:y + RAW_FACE, x:x + RAW_FACE] = faces
    return out
