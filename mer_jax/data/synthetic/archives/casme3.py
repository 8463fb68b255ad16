"""CAS(ME)^3 Part A fixture archive: synthetic videos in the layout of the official Part A release.

    part_A/data/part_A_split/part_A/spNO.1/a/color/1.jpg ... {n}.jpg   (unpadded frame numbers)
    part_A/data/part_A_split/part_A/spNO.1/a/depth/1.png ...           (uint16 PNG)
    cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   Subject | Filename | Onset | Apex | Offset | AU |
                                                Objective class | emotion | (2 blank header cells)
    or CAS(ME)3_part_A_v2.xlsx, sheet `AU+Emotion`: ... | AU | Expression type | Objective class

Colour frames are small raw frames (a synthetic face pasted in a flat `raw_size` frame, found by the
aligner's OpenCV detector). Depth frame n is 1000 + n millimetres everywhere but a 50 mm nearer patch on
the face, so tests can tell which depth frame was stored. Several MEs share one video; the frames
between them are neutral. With `quirks=True` the default fixture has Part A's known quirks
(reference/corpora.md section 6): an uppercase `J` Filename, several MEs of one (Subject, Filename), an
onset and apex 0 where 0.jpg does not exist, `Others` capitalised, and a frame dropped inside an ME.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mer_jax.data.synthetic.archives.common import clip_frames, write_frames, write_sheet
from mer_jax.data.synthetic.archives.smic import on_canvas

FRAMES = Path("part_A/data/part_A_split/part_A")
JPGINDEX_V2 = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
JPGINDEX_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion", None, None]
AU_EMOTION = "CAS(ME)3_part_A_v2.xlsx"
AU_EMOTION_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Expression type", "Objective class"]
# emotion cell -> taxonomy name the clip is rendered as
_RENDER = {"disgust": "disgust", "surprise": "surprise", "others": "others", "fear": "fear", "anger": "anger",
           "sad": "sadness", "happy": "happiness"}
_AUS = ("4", "L12+R14", "1+2", "5", "9+17", "12", "4+7", 14)
_OBJECTIVE = ("I", "II", "III", "IV", "V", "VI", "VII")

# Default fixture: (subject, Filename cell, emotion cell, quirk). spNO.1/a holds 3 MEs (meb numbers them
# a, a2, a3); `J` is uppercase; spNO.2/c starts at frame 1 with onset and apex 0; spNO.3/f drops a frame.
DEFAULT = [
    ("spNO.1", "a", "disgust", None), ("spNO.1", "a", "surprise", None), ("spNO.1", "a", "happy", None),
    ("spNO.1", "b", "fear", None),
    ("spNO.2", "J", "others", "uppercase"), ("spNO.2", "c", "anger", "zero_onset"), ("spNO.2", "d", "Others", None),
    ("spNO.3", "a", "sad", None), ("spNO.3", "e", "happy", None), ("spNO.3", "f", "disgust", "dropped"),
]


def depth_frame(n: int, size: tuple[int, int], face: int) -> np.ndarray:
    """uint16 depth of frame n: 1000 + n mm, a 50 mm nearer square in the middle of the face."""
    width, height = size
    depth = np.full((height, width), 1000 + n, np.uint16)
    half = max(1, face // 8)
    cy, cx = height // 2, width // 2
    depth[cy - half:cy + half, cx - half:cx + half] -= 50
    return depth


def write_casme3(root, *, samples: list[dict] | None = None, variant: str = "part_a", quirks: bool = True,
                 num_frames: int = 5, resolution: int = 64, raw_size: tuple[int, int] = (160, 120),
                 annotation: str = JPGINDEX_V2, depth: bool = True, macro_rows: int = 2) -> dict:
    """Write a CAS(ME)^3 Part A copy under `root` (the builder's manual_dir).

    samples: [{"subject" (`spNO.1` or a number), "filename" (`a`; `J` kept as written), "emotion" (cell
        text), optional "quirk" (`zero_onset`, `dropped`), "onset"/"apex"/"offset" (cells written as
        given; then "frames": (first, last) frame numbers on disk for the video, the union over its
        samples)}]; None: the default fixture.
    annotation: file name; `CAS(ME)3_part_A_v2.xlsx` writes the `AU+Emotion` sheet (no emotion column,
        `macro_rows` macro-expression rows added).
    Returns {"root", "annotation", "frames_root", "samples" (cells, expected onset/apex/offset, folder,
    row), "micro", "macro"}.
    """
    if variant != "part_a":
        raise ValueError(f"unknown CAS(ME)^3 variant {variant!r}")
    root = Path(root)
    frames_root = root / FRAMES
    if samples is None:
        samples = [{"subject": s, "filename": f, "emotion": e, "quirk": q if quirks else None}
                   for s, f, e, q in DEFAULT]
    videos: dict[tuple[str, str], list[dict]] = {}
    for order, sample in enumerate(samples):
        match = re.search(r"(\d+)$", str(sample["subject"]).strip())
        subject = f"spNO.{int(match.group(1))}"
        videos.setdefault((subject, str(sample["filename"]).lower()), []).append(
            {**sample, "subject": subject, "order": order})
    written = []
    subject_index = {s: k for k, s in enumerate(sorted({s for s, _ in videos}, key=lambda s: int(s[5:])))}
    for (subject, video), video_samples in videos.items():
        cursor, by_number, span = 3, {}, None
        for sample in video_samples:
            quirk = sample.get("quirk") or ""
            emotion = _RENDER.get(str(sample["emotion"]).strip().lower(), "others")
            if "onset" in sample:   # cells as given; frames on disk from "frames"
                cells = {k: sample[k] for k in ("onset", "apex", "offset")}
                first, last = sample.get("frames", (cells["onset"], cells["offset"]))
                span = (first, last) if span is None else (min(span[0], first), max(span[1], last))
                expected = dict(cells)
            else:
                if quirk == "zero_onset":   # the ME starts on the video's first frame, 1; annotated 0
                    cursor = 1
                onset, last = cursor, cursor + num_frames - 1
                cursor = last + 3
                cells = {"onset": onset, "apex": (onset + last) // 2, "offset": last}
                expected = dict(cells)
                if quirk == "zero_onset":
                    cells["onset"] = cells["apex"] = 0
                    expected["apex"] = 1
                clip = clip_frames(subject_index[subject], len(written), emotion, num_frames, resolution=resolution)
                for n, frame in zip(range(onset, last + 1), on_canvas(clip, raw_size)):
                    by_number[n] = frame
            record = {**sample, "subject": subject, "video": video, "cells": cells, **expected,
                      "dropped": [], "folder": frames_root / subject / video / "color"}
            if quirk == "dropped":
                record["dropped"] = [expected["apex"] + 1]
            written.append(record)
        if by_number:
            last = max(by_number)
            span = (1, last + 2) if span is None else (1, max(span[1], last + 2))
        neutral = next(iter(by_number.values())) if by_number else on_canvas(
            clip_frames(subject_index[subject], 63, "others", 1, resolution=resolution), raw_size)[0]
        numbers = [n for n in range(span[0], span[1] + 1)
                   if not any(n in r["dropped"] for r in written if (r["subject"], r["video"]) == (subject, video))]
        folder = frames_root / subject / video
        write_frames(folder / "color", [by_number.get(n, neutral) for n in numbers], [f"{n}.jpg" for n in numbers])
        if depth:
            _write_depth(folder / "depth", numbers, raw_size, resolution)
    written.sort(key=lambda r: r["order"])   # rows in the order the samples were given
    au_emotion = annotation.lower() == AU_EMOTION.lower()
    rows = []
    for k, record in enumerate(written):
        cells = record["cells"]
        aus = _AUS[k % len(_AUS)]
        objective = _OBJECTIVE[k % len(_OBJECTIVE)]
        if au_emotion:
            rows.append([record["subject"], record["filename"], cells["onset"], cells["apex"], cells["offset"],
                         aus, "Micro-expression", objective])
        else:
            remark = "apex occluded" if k == 1 else None   # the blank-header columns hold stray notes
            rows.append([record["subject"], record["filename"], cells["onset"], cells["apex"], cells["offset"],
                         aus, objective, record["emotion"], remark, None])
        record["aus"] = aus
        record["row"] = len(rows) + 1   # header on spreadsheet row 1
    if au_emotion:
        first = written[0]
        for _ in range(macro_rows):
            rows.append([first["subject"], first["filename"], first["onset"], first["apex"], first["offset"],
                         "6+12", "Macro-expression", "I"])
        write_sheet(root / annotation, AU_EMOTION_HEADER, rows, sheet="AU+Emotion",
                    extra_sheets={"eye blink": [["Subject", "Filename", "Onset", "Offset"]]})
    else:
        write_sheet(root / annotation, JPGINDEX_HEADER, rows)
    return {"root": root, "annotation": root / annotation, "frames_root": frames_root, "samples": written,
            "micro": len(written), "macro": macro_rows if au_emotion else 0}


def _write_depth(folder: Path, numbers: list[int], size: tuple[int, int], face: int) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        if not cv2.imwrite(str(folder / f"{n}.png"), depth_frame(n, size, face)):
            raise OSError(f"cannot write {folder / f'{n}.png'}")
