"""CASME (I) fixture archive: synthetic clips written in the layout meb's loaders read.

Layout under `root` (what a user passes as manual_dir; reference/corpora.md section 4, meb
`datasets_old.py` casme / casme_raw):
    casme.xlsx                                   meb's annotation file (the original name is unknown):
                                                 Subject | Filename | <blank> | OnsetF | ApexF1 | ApexF2 |
                                                 OffsetF | <blank> | Emotion | AU  (header on row 1)
    Cropped/sub01/EP02_01/reg_EP02_01-46.jpg     variant `cropped`: onset..offset only
    CASME_raw_selected/sub01/EP02_01/EP02_01-46.jpg   variant `raw_selected`: onset..offset, whole frame
Frame numbers are unpadded in the first 92 data rows and zero-padded to 3 digits from data row 92 on
(`EP08_03-046.jpg`), as meb's loader expects. The AU column's header is unconfirmed: meb's
`extract_action_units` reads a column `AU` and its CASME loader renames none, so the fixture writes
`AU` (`au_header=None` writes no AU column). Its position after Emotion is a guess; the builder finds it
by header. Clip names `EP02_01`, `EP06_5` (folder = Filename) are illustrative, unconfirmed.

Cropped frames are 32 px face crops; raw frames a 168 x 224 canvas with a 128 px procedural face the
OpenCV cascades find (shared with the CASME II fixture), for the `raw_selected` alignment.

Known quirks placed by default (`quirks=True`): meb's fixes by 0-based data row (datasets.py Casme),
each written so that the annotated values do not fit the frames on disk and meb's values do:
- row 40: annotated onset 10, offset 14 (disk 100..149; meb: onset 100, offset 149, apex 120);
- rows 42, 43: onset and apex swapped (110/101, 65/57; meb: onset 101 / 57, apex 110 / 65, offsets 119 / 74);
- row 54: offset 4 (disk ..40; meb: 40); row 140: offset 124 (disk ..142; meb: 142).
The default fixture has 142 rows (so rows 92+ and 140 exist) over 8 subjects, every CASME emotion
present, disgust, repression and tense most frequent (the CASME paper's ordering; counts are not the
real ones). `samples=` writes exactly the clips asked for, the row quirks at the same row indices.
"""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from mer_jax.data.synthetic.archives.casme2 import FACE_POOL, RAW_FACE, _raw_frames
from mer_jax.data.synthetic.archives.common import clip_frames, write_frames, write_sheet

HEADER = ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "Emotion"]
ANNOTATION = "casme.xlsx"
VARIANT_DIRS = {"cropped": "Cropped", "raw_selected": "CASME_raw_selected"}
VARIANTS = tuple(VARIANT_DIRS)
PADDED_FROM_ROW = 92    # meb datasets_old.py: `if i >= 92: j = add_zeros(j)`

# meb datasets.py (Casme): by 0-based data row, (annotated onset, apex, offset) written by the fixture ->
# (onset, apex, offset) on disk / after meb's fix.
ROW_QUIRKS = {
    40: ((10, 120, 14), (100, 120, 149)),
    42: ((110, 101, 119), (101, 110, 119)),
    43: ((65, 57, 74), (57, 65, 74)),
    54: ((31, 35, 4), (31, 35, 40)),
    140: ((138, 140, 124), (138, 140, 142)),
}

_AUS = {
    "disgust": ["4+9", "L10", "9", "4+7"], "repression": ["14", "R14+17", "15+17"], "tense": ["4", "R4+7", "14+24"],
    "surprise": ["1+2", "R1+R2"], "happiness": ["12", "6+12"], "sadness": ["1+4+15"], "contempt": ["R12+R14"],
    "fear": ["1+2+4+20"],
}
# Drawn by the synthetic renderer as (tense has no prototype; rendered as brow lowering).
_RENDER = {"tense": "anger", "amusement": "happiness"}
# Default fixture: emotion counts per 142 rows.
_COUNTS = {"disgust": 40, "repression": 30, "tense": 30, "surprise": 16, "happiness": 9, "sadness": 7,
           "contempt": 6, "fear": 4}
_SUBJECTS = (1, 2, 4, 5, 8, 11, 15, 19)


def default_samples() -> list[dict]:
    """The default fixture's 142 rows as `samples` dicts, in annotation order (sorted by subject)."""
    emotions = [e for e, n in _COUNTS.items() for _ in range(n)]
    order = np.random.default_rng(0).permutation(len(emotions))
    emotions = [emotions[k] for k in order]
    per = np.array_split(np.arange(len(emotions)), len(_SUBJECTS))
    out = []
    for subject, rows in zip(_SUBJECTS, per):
        for k, i in enumerate(rows):
            out.append({"subject": subject, "clip": f"EP{1 + k // 3:02d}_{1 + k % 3 + (k % 2) * 3}",
                        "emotion": emotions[i]})
    return out


def _span(i: int, sample: dict, quirks: bool) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """((annotated onset, apex, offset), (onset, apex, offset) on disk) of data row i."""
    if "onset" in sample:
        true = (int(sample["onset"]), int(sample.get("apex", (sample["onset"] + sample["offset"]) // 2)),
                int(sample["offset"]))
        return true, true
    if quirks and i in ROW_QUIRKS:
        return ROW_QUIRKS[i]
    length = 3 + i % 2
    onset = 5 + (i * 29) % 140
    true = (onset, onset + 1, onset + length - 1)
    return true, true


def frame_name(filename: str, number: int, row: int, *, cropped: bool) -> str:
    """`[reg_]{Filename}-{j}.jpg`, j zero-padded to 3 digits from data row 92 on."""
    j = f"{number:03d}" if row >= PADDED_FROM_ROW else str(number)
    return f"{'reg_' if cropped else ''}{filename}-{j}.jpg"


def write_casme(root, *, samples: list[dict] | None = None, variant: str = "cropped", quirks: bool = True,
                annotation: str = ANNOTATION, au_header: str | None = "AU", resolution: int = 32) -> dict:
    """Write a CASME archive under `root` and describe it.

    samples: [{"subject": 1 | "01" | "sub01", "clip": "EP02_01", "emotion": "disgust"}, ...], optionally
        with "onset", "apex", "offset" and "aus"; None: the default 142-row fixture.
    variant: `cropped`, `raw_selected` or `all`.
    quirks: place meb's row quirks (module docstring); False writes a clean archive.
    au_header: header of the AU column, None for no AU column.

    Returns {"root", "annotation", "variants", "num_samples", "subjects", "emotion_counts", "rows",
    "excluded", "row_fixes"}: each of "rows" has the row index, subject (`sub01`), clip, emotion, the
    onset/apex/offset after the builder's fixes, num_frames, the annotated values, the AU string and
    whether the row is fixed.
    """
    root = Path(root)
    variants = VARIANTS if variant == "all" else (variant,)
    if set(variants) - set(VARIANTS):
        raise ValueError(f"unknown CASME variant {variant!r}; expected one of {VARIANTS} or 'all'")
    samples = default_samples() if samples is None else list(samples)
    header = HEADER + ([au_header] if au_header else [])
    rows, described, row_fixes = [], [], {}
    for i, sample in enumerate(samples):
        digits = "".join(c for c in str(sample["subject"]) if c.isdigit())
        number = int(digits)
        subject, clip, emotion = f"sub{number:02d}", str(sample["clip"]), str(sample["emotion"])
        annotated, true = _span(i, sample, quirks)
        fixed = annotated != true
        if fixed:
            row_fixes[i] = {"clip": f"{subject}/{clip}", "annotated": annotated, "fixed": true}
        options = _AUS.get(emotion.lower(), ["4"])
        aus = sample.get("aus") or options[i % len(options)]
        onset_a, apex_a, offset_a = annotated
        row = [number, clip, None, onset_a, apex_a, None, offset_a, None, emotion]
        rows.append(row + ([aus] if au_header else []))
        numbers = list(range(true[0], true[2] + 1))
        _write_clip(root, variants, subject, number, i, clip, emotion, numbers, resolution)
        described.append({"row": i, "subject": subject, "clip": clip, "emotion": emotion, "onset": true[0],
                          "apex": true[1], "offset": true[2], "num_frames": len(numbers),
                          "annotated": annotated, "aus": aus if au_header else None, "fixed": fixed})
    write_sheet(root / annotation, header, rows)
    return {
        "root": root, "annotation": root / annotation, "variants": list(variants),
        "num_samples": len(described), "subjects": sorted({r["subject"] for r in described}),
        "emotion_counts": dict(collections.Counter(r["emotion"] for r in described)),
        "rows": described, "excluded": [], "row_fixes": row_fixes,
    }


def _write_clip(root: Path, variants, subject: str, number: int, i: int, clip: str, emotion: str,
                numbers: list[int], resolution: int) -> None:
    face = FACE_POOL[number % len(FACE_POOL)]
    drawn = _RENDER.get(emotion.lower(), emotion.lower())
    if "cropped" in variants:
        frames = clip_frames(face, i, drawn, len(numbers), resolution=resolution)
        write_frames(root / "Cropped" / subject / clip, frames,
                     [frame_name(clip, n, i, cropped=True) for n in numbers])
    if "raw_selected" in variants:
        frames = _raw_frames(clip_frames(face, i, drawn, len(numbers), resolution=RAW_FACE), number)
        write_frames(root / "CASME_raw_selected" / subject / clip, frames,
                     [frame_name(clip, n, i, cropped=False) for n in numbers])
