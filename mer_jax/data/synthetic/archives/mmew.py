"""An MMEW fixture archive: synthetic clips in the exact layout of the licensed MMEW release.

Written under `root` (what a user passes as manual_dir), as reference/corpora.md section 7 describes:
- `MMEW/Micro_Expression/<emotion>/<Filename>/<n>.jpg` (layout "emotion", meb / merlib / HTNet), or with
  `layout="subject"` `MMEW/Micro_Expression/<S01>/<emotion>/<Filename>/<n>.jpg` (the official page).
  Frames are JPEG, numbered from 1 without padding (`1.jpg ... 108.jpg`, where a string sort is wrong).
  The `others` clips sit in a folder named `repression` by default (`others_folder`), the quirk meb and
  the official page show. A `MMEW/Macro_Expression/` clip is written too (the builder must ignore it).
- `MMEW/MMEW_Micro_Exp.xlsx` (or `annotation="MMEW_Micro_Exp_v2.xlsx"`), header on row 1:
  `Subject | Filename | OnsetFrame | ApexFrame | OffsetFrame | Action Units | Estimated Emotion |
  remarks`, subjects as ints (`1`), Filename `S01-01-001` (`S<subject>-<emotion code>-<count>`; codes
  01 happiness, 02 surprise, 03 disgust, 04 others, 05 fear, 06 sadness, 07 anger).

Sizes differ from the real corpus to keep tests fast: frames are 32 x 32 (MMEW's are about 231 x 231)
and clips have 4 frames, except the quirk rows, whose corrected offsets (54-108) set their length.

The default archive has 160 rows (MMEW has 300: the first 157 rows are needed for meb's row-indexed
fixes), 30 subjects S01..S30, every emotion in about MMEW's proportions (surprise 47, disgust 38,
others 36, happiness 19, fear 9, sadness 7, anger 4). With `quirks=True` the 16 rows meb corrects
(0-based data rows 33, 35-42, 142, 143, 145, 146, 148, 154, 156) have clip folders 1..<meb's offset>
and annotated cells that contradict them (apex blank or after the offset; offset past the last frame or
before it). These cell contents are invented (the real cells are not public); the rows and corrected
values are meb's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mer_jax.data import taxonomy
from mer_jax.data.synthetic.archives.common import clip_frames, write_frames, write_sheet

HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
          "remarks"]
ANNOTATIONS = ("MMEW_Micro_Exp.xlsx", "MMEW_Micro_Exp_v2.xlsx")
CODES = {"happiness": 1, "surprise": 2, "disgust": 3, "others": 4, "fear": 5, "sadness": 6, "anger": 7}
COUNTS = {"surprise": 47, "disgust": 38, "others": 36, "happiness": 19, "fear": 9, "sadness": 7, "anger": 4}
AUS = {"happiness": "6+12", "surprise": "1+2+5", "disgust": "9+10", "others": "L2", "fear": "1+2+4+20",
       "sadness": "1+4+15", "anger": "4+7+23"}
# meb's corrected (apex, offset) per 0-based data row.
MEB_FIXES = dict(zip((33, 35, 36, 37, 38, 39, 40, 41, 42, 142, 143, 145, 146, 148, 154, 156),
                     zip((40, 15, 46, 20, 25, 20, 23, 28, 32, 56, 32, 27, 22, 29, 31, 38),
                         (75, 54, 59, 98, 80, 93, 58, 61, 68, 88, 80, 85, 61, 108, 72, 106))))


def default_samples() -> list[dict]:
    """The 160 rows of the default archive: subject (int), clip, emotion, ordered by subject."""
    emotions = [e for e, n in COUNTS.items() for _ in range(n)]
    order = np.random.default_rng(2021).permutation(len(emotions))
    samples, counts = [], {}
    for k, i in enumerate(order):
        subject, emotion = k * 30 // len(emotions) + 1, emotions[i]
        n = counts[(subject, emotion)] = counts.get((subject, emotion), 0) + 1
        samples.append({"subject": subject, "clip": f"S{subject:02d}-{CODES[emotion]:02d}-{n:03d}",
                        "emotion": emotion})
    return samples


def write_mmew(root, *, samples: list[dict] | None = None, layout: str = "emotion",
               others_folder: str = "repression", annotation: str = "MMEW_Micro_Exp.xlsx", quirks: bool = True,
               frames_per_clip: int = 4, resolution: int = 32) -> dict:
    """Write an MMEW archive under `root`; returns what a correct build must give.

    samples: rows in order, each {"subject": 1 or "S01", "clip": "S01-01-001", "emotion": "happiness"}
        (MMEW's own forms), optionally "onset", "apex" (None: blank cell), "offset", "aus" (cell text);
        None: the 160 default rows. meb's row fixes are written into whichever rows of the list they name.
    layout: "emotion" (Micro_Expression/<emotion>/<clip>) or "subject" (Micro_Expression/<S01>/<emotion>/<clip>).
    others_folder: folder name of the `others` clips ("repression" or "others").
    Returns {"root", "annotation", "frames_root", "num_samples", "subjects", "excluded": [], "samples":
    [{"clip_id", "subject", "clip", "emotion", "folder", "onset", "apex", "offset", "num_frames", "aus",
    "fixed" (bool)}]} with frame numbers as stored (fixed).
    """
    if layout not in ("emotion", "subject"):
        raise ValueError(f"layout must be 'emotion' or 'subject', got {layout!r}")
    if annotation not in ANNOTATIONS:
        raise ValueError(f"annotation must be one of {ANNOTATIONS}, got {annotation!r}")
    root = Path(root)
    frames_root = root / "MMEW" / "Micro_Expression"
    samples = default_samples() if samples is None else samples
    rows, expected = [], []
    for i, sample in enumerate(samples):
        s = int(str(sample["subject"]).strip().lstrip("Ss"))
        subject, clip, emotion = f"S{s:02d}", sample["clip"], sample["emotion"]
        name = emotion.strip().lower()
        onset = sample.get("onset", 1)
        offset = sample.get("offset", onset + frames_per_clip - 1)
        apex = sample.get("apex", (onset + offset + 1) // 2)
        apex_cell, offset_cell, fixed = apex, offset, False
        if quirks and i in MEB_FIXES:
            (apex, offset), j = MEB_FIXES[i], sorted(MEB_FIXES).index(i)
            onset, fixed = 1, True
            apex_cell = None if j % 2 == 0 else offset + 5          # blank, or after the offset
            offset_cell = offset + 12 if j % 3 == 0 else (offset - 9 if j % 3 == 1 else offset)
        if apex is None:
            apex = (onset + offset) // 2
        folder_emotion = others_folder if name == "others" else name
        parent = frames_root / subject if layout == "subject" else frames_root
        folder = parent / folder_emotion / clip
        names = [f"{n}.jpg" for n in range(onset, offset + 1)]
        frames = clip_frames(s, i, name if name in taxonomy.EMOTIONS else "others", len(names),
                             resolution=resolution)
        write_frames(folder, frames, names)
        aus = sample.get("aus", AUS.get(name, "1"))
        rows.append([sample["subject"], clip, onset, apex_cell, offset_cell, aus, emotion,
                     "apex and offset re-annotated" if fixed else None])
        expected.append({
            "clip_id": f"mmew/{subject}/{clip}", "subject": subject, "clip": clip, "emotion": name,
            "folder": folder, "onset": onset, "apex": apex, "offset": offset, "num_frames": offset - onset + 1,
            "aus": taxonomy.au_multi_hot(_aus_in_vocab(aus)), "fixed": fixed})
    macro = root / "MMEW" / "Macro_Expression" / "happiness" / "S01-01-001"
    write_frames(macro, clip_frames(1, 99, "happiness", 2, resolution=resolution), ["1.jpg", "2.jpg"])
    path = root / "MMEW" / annotation
    write_sheet(path, HEADER, rows)
    return {"root": root, "annotation": path, "frames_root": frames_root, "num_samples": len(expected),
            "subjects": sorted({e["subject"] for e in expected}), "excluded": [], "samples": expected}


def _aus_in_vocab(text: str) -> list[int]:
    import re

    return sorted({int(n) for n in re.findall(r"\d+", str(text))} & set(taxonomy.AU_VOCAB))
