"""A SAMM fixture archive: synthetic clips in the exact layout of the licensed SAMM release.

Written under `root` (what a user passes as manual_dir), as reference/corpora.md section 2 describes:
- `SAMM/<subject, 3 digits>/<Filename>/<subject>_<frame>.jpg`: greyscale JPEG, one folder per clip holding
  its onset..offset frames. Frame numbers are zero-padded to 5 digits for even subjects
  (`006_05562.jpg`) and 4 for odd ones (`009_3577.jpg`); one clip of subject 007 runs 9998..10002,
  where a string sort of its 4-digit names would be wrong.
- `SAMM_Micro_FACS_Codes_v2.xlsx` with 13 preamble rows (header on Excel row 14), or with
  `variant="20181215"` `SAMM_20181215_Micro_FACS_Codes_v2.xlsx` with the header on row 1. Header:
  `Subject | Filename | Inducement Code | Onset Frame | Apex Frame | Offset Frame | Duration | Micro |
  Action Units | Estimated Emotion | Objective Classes | Notes`. Subjects are written as `6` (ints)
  below subject 020 and as `020` (text) from there on, so both forms occur.

Sizes differ from the real corpus to keep tests fast: clips have a few frames (4 by default), and frames
are 32 x 32 face crops unless `raw_faces=True`, which writes 480 x 325 frames (half of SAMM's 960 x 650)
with a 128 px face the Haar cascades find (common.raw_frames), for the aligned `default` config.

The default archive mirrors SAMM's 159 rows: 32 subjects 006..037 and its emotion counts (Anger 57,
Contempt 12, Disgust 9, Fear 8, Sadness 6, Happiness 26, Surprise 15, Other 26), with every known quirk
(`quirks=True`) written into the rows where the builder's quirk table expects it:
- row 56 (0-based data row): offset typo 5793 where the folder ends at 5739;
- rows 125, 132, 133: apex blank, before the onset, and `-`, where meb's estimates are 1105, 4945, 5130;
- clips 028_4_1 and 032_3_1: apex before the onset / after the offset (merlib: midpoint);
- rows 15, 18, 41, 64, 154: AU cells with `or` (meb's resolutions), and row 7 `12 or 14` (no entry);
- one `Others` label beside `Other`.
The cell contents of these errors are invented (the real cells are not public); their rows, clips and
corrected values are the ones meb and merlib fix.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mer_jax.data import taxonomy
from mer_jax.data.synthetic.archives.common import clip_frames, raw_frames, write_frames, write_sheet

HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
          "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
ANNOTATION = {"v2": "SAMM_Micro_FACS_Codes_v2.xlsx", "20181215": "SAMM_20181215_Micro_FACS_Codes_v2.xlsx"}
PREAMBLE = [
    ["SAMM: Spontaneous Actions and Micro-Movements"],
    ["Micro-movement FACS codes, version 2"],
    [],
    ["Coded by two certified FACS coders."],
    ["Onset Frame: first frame of the movement; Apex Frame: its peak; Offset Frame: its last frame."],
    ["Duration: Offset Frame - Onset Frame + 1 frames at 200 fps."],
    ["Micro: movements of at most 1/2 s; Macro movements are not listed."],
    ["Action Units: FACS codes; L/R = side, A-E = intensity."],
    ["Estimated Emotion: as estimated from the AUs and the participant's self-report."],
    ["Objective Classes: I-VII, from the AUs alone."],
    [],
    ["Please cite: Davison et al., SAMM: A Spontaneous Micro-Facial Movement Dataset, IEEE TAC 2018."],
    [],
]
# Real-corpus emotion counts (reference/corpora.md section 2) of the default archive.
COUNTS = {"Anger": 57, "Contempt": 12, "Disgust": 9, "Fear": 8, "Sadness": 6, "Happiness": 26, "Surprise": 15,
          "Other": 26}
EMOTIONS = {"Anger": "anger", "Contempt": "contempt", "Disgust": "disgust", "Fear": "fear",
            "Happiness": "happiness", "Sadness": "sadness", "Surprise": "surprise", "Other": "others",
            "Others": "others"}
# Fixture AU codes per emotion, in SAMM's notation; and objective classes (fixture values).
AUS = {"anger": "4+7", "contempt": "R14A", "disgust": "9+10", "fear": "1+2+4+20", "happiness": "6+12",
       "sadness": "1+4+15", "surprise": "1+2+5", "others": "R12 + R15"}
OBJECTIVE = {"happiness": 1, "surprise": 2, "anger": 3, "disgust": 4, "sadness": 5, "fear": 6, "contempt": 7,
             "others": 7}
SUBJECTS = tuple(range(6, 38))
RAW_FRAME_SIZE = (480, 325)   # (width, height) of raw_faces frames: half of SAMM's 960 x 650
# Indices into common.raw_frames' detectable faces whose eyes the Haar cascades also find in SAMM's grey
# JPEG frames at RAW_FRAME_SIZE, for every emotion and sample tried (measured with OpenCV 4.14).
GREY_DETECTABLE = (1, 3, 4, 5, 10, 11, 15)

# The quirks written when quirks=True: 0-based data row -> bad cells, corrected values (what the
# builder must store) and the field fixed.
ROW_QUIRKS = {
    56: {"onset": 5735, "offset": 5739, "apex": 5737, "cells": {"Offset Frame": 5793}, "fixed": "offset"},
    125: {"onset": 1103, "offset": 1107, "apex": 1105, "cells": {"Apex Frame": None}, "fixed": "apex"},
    132: {"onset": 4943, "offset": 4947, "apex": 4945, "cells": {"Apex Frame": 4495}, "fixed": "apex"},
    133: {"onset": 5128, "offset": 5132, "apex": 5130, "cells": {"Apex Frame": "-"}, "fixed": "apex"},
    15: {"cells": {"Action Units": "R12 + R15 or R14"}, "aus": "R12 + R15", "fixed": "aus"},
    18: {"cells": {"Action Units": "R12 + R15 or 14"}, "aus": "R12 + R15", "fixed": "aus"},
    41: {"cells": {"Action Units": "L14 or L12"}, "aus": "L14", "fixed": "aus"},
    64: {"cells": {"Action Units": "R14 or R12"}, "aus": "R14", "fixed": "aus"},
    154: {"cells": {"Action Units": "R14A or R12A"}, "aus": "R14A", "fixed": "aus"},
    7: {"cells": {"Action Units": "12 or 14"}, "aus": "12+14", "fixed": "aus"},   # no table entry: both AUs
}
# merlib's clips whose apex lies outside onset..offset (stored apex: the midpoint).
CLIP_QUIRKS = {"028_4_1": lambda onset, offset: onset - 7, "032_3_1": lambda onset, offset: offset + 40}


def default_samples() -> list[dict]:
    """The 159 rows of the default archive: subject (int), clip, emotion (SAMM's spelling)."""
    emotions = [e for e, n in COUNTS.items() for _ in range(n)]
    order = np.random.default_rng(2018).permutation(len(emotions))
    emotions = [emotions[i] for i in order]
    emotions[emotions.index("Other")] = "Others"
    samples, per_subject = [], {}
    for k, emotion in enumerate(emotions):
        subject = SUBJECTS[k * len(SUBJECTS) // len(emotions)]
        m = per_subject.get(subject, 0)
        per_subject[subject] = m + 1
        clip = "006_1_2" if (subject, m) == (6, 0) else f"{subject:03d}_{(m + subject) % 5 + 1}_1"
        samples.append({"subject": subject, "clip": clip, "emotion": emotion})
    return samples


def _subject_number(value) -> int:
    return int(str(value).strip())


def write_samm(root, *, samples: list[dict] | None = None, variant: str = "v2", quirks: bool = True,
               raw_faces: bool = False, frames_per_clip: int = 4, resolution: int = 32) -> dict:
    """Write a SAMM archive under `root`; returns what a correct build must give.

    samples: rows in order, each {"subject": 6 or "006", "clip": "006_1_2", "emotion": "Disgust"}
        (SAMM's own forms), optionally "onset", "apex" (None: blank cell), "offset", "aus" (cell text);
        None: the 159 default rows. Quirks are written into whichever rows / clips of the list the
        quirk table names.
    variant: "v2" (13 preamble rows) or "20181215" (header on row 1).
    Returns {"root", "annotation", "frames_root", "num_samples", "subjects", "excluded": [],
    "samples": [{"clip_id", "subject", "clip", "emotion", "onset", "apex", "offset", "num_frames",
    "aus" (multi-hot), "objective", "fixed" (field or None)}]} with frame numbers as stored (fixed).
    """
    if variant not in ANNOTATION:
        raise ValueError(f"variant must be one of {sorted(ANNOTATION)}, got {variant!r}")
    root = Path(root)
    frames_root = root / "SAMM"
    samples = default_samples() if samples is None else samples
    rows, expected = [], []
    next_onset = 1000
    for i, sample in enumerate(samples):
        s = _subject_number(sample["subject"])
        subject, clip, raw_emotion = f"{s:03d}", sample["clip"], sample["emotion"]
        emotion = EMOTIONS[raw_emotion]
        quirk = ROW_QUIRKS.get(i, {}) if quirks else {}
        onset = sample.get("onset", quirk.get("onset"))
        if onset is None:
            onset = 9998 if (s == 7 and not any(e["subject"] == "007" for e in expected)) else next_onset
            if clip == "006_1_2":
                onset = 5562
            next_onset = 1000 + (next_onset + 97) % 8900
        offset = sample.get("offset", quirk.get("offset", onset + frames_per_clip - 1))
        apex = sample.get("apex", quirk.get("apex", (onset + offset + 1) // 2))
        cells = {"Apex Frame": apex, "Offset Frame": offset, "Action Units": sample.get("aus", AUS[emotion])}
        stored_aus = quirk.get("aus", cells["Action Units"])
        cells.update(quirk.get("cells", {}))
        fixed = quirk.get("fixed")
        if quirks and clip in CLIP_QUIRKS:
            cells["Apex Frame"] = CLIP_QUIRKS[clip](onset, offset)
            apex, fixed = (onset + offset) // 2, "apex"
        if apex is None:   # a blank apex cell: the builder takes the midpoint
            apex = (onset + offset) // 2
        digits = 5 if s % 2 == 0 else 4
        names = [f"{subject}_{n:0{digits}d}.jpg" for n in range(onset, offset + 1)]
        if raw_faces:
            face = GREY_DETECTABLE[s % len(GREY_DETECTABLE)]
            frames = raw_frames(face, i, emotion, len(names), frame_size=RAW_FRAME_SIZE)
        else:
            frames = clip_frames(s, i, emotion, len(names), resolution=resolution)
        write_frames(frames_root / subject / clip, frames, names, grey=True)
        subject_cell = s if s < 20 else subject
        inducement = int(clip.split("_")[1]) if clip.count("_") == 2 and clip.split("_")[1].isdigit() else 1
        rows.append([subject_cell, clip, inducement, onset, cells["Apex Frame"], cells["Offset Frame"],
                     offset - onset + 1, "Micro", cells["Action Units"], raw_emotion, OBJECTIVE[emotion], ""])
        expected.append({
            "clip_id": f"samm/{subject}/{clip}", "subject": subject, "clip": clip, "emotion": emotion,
            "onset": onset, "apex": apex, "offset": offset, "num_frames": offset - onset + 1,
            "aus": taxonomy.au_multi_hot(_aus_in_vocab(stored_aus)), "objective": OBJECTIVE[emotion],
            "fixed": fixed})
    annotation = root / ANNOTATION[variant]
    write_sheet(annotation, HEADER, rows, preamble=PREAMBLE if variant == "v2" else [])
    return {"root": root, "annotation": annotation, "frames_root": frames_root, "num_samples": len(expected),
            "subjects": sorted({e["subject"] for e in expected}), "excluded": [], "samples": expected}


def _aus_in_vocab(text: str) -> list[int]:
    import re

    return sorted({int(n) for n in re.findall(r"\d+", text)} & set(taxonomy.AU_VOCAB))

