"""CAS(ME)^2 fixture archive: synthetic long videos in the layout of the `CAS(ME)^2` release.

    CAS(ME)^2/rawpic/s15/15_0101disgustingteeth/img001.jpg ... img{n:03d}.jpg   (one long video each)
    CAS(ME)^2/CAS(ME)^2code_final.xlsx    sheets CASFEcode_final (no header row), naming rule1, naming rule2

Frames are small raw frames (a synthetic face pasted in a flat `raw_size` frame, like an uncropped
recording; the aligner's OpenCV detector finds it). A long video holds every frame from 1 to its last;
each annotated expression occupies its own onset..offset stretch and the frames between are neutral.
With `quirks=True` the default fixture has CAS(ME)^2's known quirks (reference/corpora.md section 5): a
micro-expression with offset 0, one with apex 0, happy2's folder spelled `0503unnyfarting`, and subject
23's `23_0502funnyerrors` misplaced in `rawpic/s19/` (seen in one public copy); plus macro-expression
rows, which are not samples of the builder.
"""
from __future__ import annotations

import re
from pathlib import Path

from mer_jax.data.synthetic.archives.common import clip_frames, write_frames, write_sheet
from mer_jax.data.synthetic.archives.smic import on_canvas

# naming rule1: folder number | subject folder | subject id (22 subjects).
SUBJECT_NUMBERS = (15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 40)
# naming rule2: video code | clip prefix | stimulus (folder suffix), `unnyfarting` (sic) as shipped.
VIDEOS = (
    ("0101", "disgust1", "disgustingteeth"), ("0102", "disgust2", "eatingworms"),
    ("0401", "anger1", "girlcrashing"), ("0402", "anger2", "beatingpregnantwoman"),
    ("0502", "happy1", "funnyerrors"), ("0503", "happy2", "unnyfarting"),
    ("0505", "happy3", "funnyinnovations"), ("0507", "happy4", "climbingthewall"),
    ("0508", "happy5", "funnydunkey"),
)
_SELF_REPORT = {"negative": "disgust", "positive": "happyiness", "surprise": "surprise", "others": "helpless"}
_AUS = ("4+7", 12, "1+2", "R12", "", "L10+25")

# Default fixture: (subject folder, clip, emotion category, type, quirk).
DEFAULT = [
    ("s15", "disgust1_1", "negative", "micro-expression", None),
    ("s15", "disgust1_2", "negative", "macro-expression", None),
    ("s15", "happy1_1", "positive", "micro-expression", None),
    ("s16", "happy2_1", "positive", "micro-expression", "apex_zero"),
    ("s16", "happy2_2", "positive", "macro-expression", "offset_zero"),
    ("s16", "anger1_1", "others", "micro-expression", "offset_zero"),
    ("s16", "anger1_2", "surprise", "micro-expression", None),
    ("s19", "disgust2_1", "surprise", "micro-expression", None),
    ("s23", "happy4_1", "negative", "micro-expression", None),
    ("s23", "happy4_2", "positive", "macro-expression", None),
    ("s23", "happy1_1", "others", "micro-expression", "misplaced:s19"),
]


def _subject(value) -> str:
    match = re.search(r"(\d+)$", str(value).strip())
    if match is None:
        raise ValueError(f"CAS(ME)^2 subject {value!r} has no number")
    number = int(match.group(1))
    if number not in SUBJECT_NUMBERS:  # a subject id 1-22
        number = SUBJECT_NUMBERS[number - 1]
    return f"s{number}"


def write_casme_sq(root, *, samples: list[dict] | None = None, variant: str = "rawpic", quirks: bool = True,
                   num_frames: int = 5, resolution: int = 64, raw_size: tuple[int, int] = (160, 120),
                   annotation: str = "CAS(ME)^2code_final.xlsx", folder: str = "CAS(ME)^2") -> dict:
    """Write a CAS(ME)^2 copy under `root` (the builder's manual_dir), in `root/<folder>/`.

    samples: [{"subject" (`s15` or id 1-22), "clip" (`disgust1_1`), "emotion" (negative / positive /
        surprise / others), optional "type" (`micro-expression`), "quirk" (`offset_zero`, `apex_zero`,
        `misplaced:<subject folder>`)}]; None: the default fixture (with quirks unless quirks=False).
    Returns {"root", "annotation", "rawpic", "samples" (each with the annotated cells, the expected
    onset/apex/offset frame numbers, folder), "micro", "macro" (counts)}.
    """
    if variant != "rawpic":
        raise ValueError(f"unknown CAS(ME)^2 variant {variant!r}")
    root = Path(root)
    base = root / folder
    rawpic = base / "rawpic"
    if samples is None:
        samples = [{"subject": s, "clip": c, "emotion": e, "type": t, "quirk": q if quirks else None}
                   for s, c, e, t, q in DEFAULT]
    codes = {name: (code, stimulus) for code, name, stimulus in VIDEOS}
    ids = {f"s{n}": i + 1 for i, n in enumerate(SUBJECT_NUMBERS)}
    by_video: dict[tuple[str, str], list[dict]] = {}
    for order, sample in enumerate(samples):
        subject = _subject(sample["subject"])
        prefix = sample["clip"].split("_")[0]
        by_video.setdefault((subject, prefix), []).append({**sample, "subject": subject, "order": order})
    written = []
    subject_index = {s: k for k, s in enumerate(sorted({s for s, _ in by_video}, key=lambda s: int(s[1:])))}
    for (subject, prefix), video_samples in by_video.items():
        code, stimulus = codes[prefix]
        number = int(subject[1:])
        cursor, frames_by_number = 2, {}
        for k, sample in enumerate(video_samples):
            quirk = sample.get("quirk") or ""
            onset, last = cursor, cursor + num_frames - 1
            cursor = last + 3
            clip = clip_frames(subject_index[subject], len(written), sample["emotion"], num_frames,
                               resolution=resolution)
            for n, frame in zip(range(onset, last + 1), on_canvas(clip, raw_size)):
                frames_by_number[n] = frame
            apex_cell, offset_cell = (onset + last) // 2, last
            expected = {"onset": onset, "apex": (onset + last) // 2, "offset": last}
            if quirk == "offset_zero":   # offset not coded: the builder takes the apex (here the last frame)
                apex_cell, offset_cell = last, 0
                expected["apex"] = last
            elif quirk == "apex_zero":   # apex not coded: the builder takes the midpoint
                apex_cell = 0
            emotion = sample["emotion"]
            kind = sample.get("type", "micro-expression")
            aus = _AUS[len(written) % len(_AUS)]
            written.append({**sample, "subject": subject, "type": kind, "onset_cell": onset,
                            "apex_cell": apex_cell, "offset_cell": offset_cell, "aus": aus, **expected,
                            "video": f"{number}_{code}{stimulus}",
                            "cells": [ids[subject], sample["clip"], onset, apex_cell, offset_cell, aus, emotion,
                                      kind, _SELF_REPORT.get(emotion, emotion)]})
        length = cursor
        neutral = next(iter(frames_by_number.values()))
        frames = [frames_by_number.get(n, neutral) for n in range(1, length + 1)]
        place = subject
        for sample in video_samples:
            if str(sample.get("quirk") or "").startswith("misplaced:"):
                place = sample["quirk"].split(":", 1)[1]
        video = rawpic / place / f"{number}_{code}{stimulus}"
        write_frames(video, frames, [f"img{n:03d}.jpg" for n in range(1, length + 1)])
        for sample in written:
            if sample["subject"] == subject and sample["clip"].split("_")[0] == prefix:
                sample["folder"] = video
    for subject in ids:   # every subject folder exists in a real copy
        if subject in subject_index:
            (rawpic / subject).mkdir(parents=True, exist_ok=True)
    written.sort(key=lambda r: r["order"])   # rows in the order the samples were given
    rows = [sample.pop("cells") for sample in written]
    for k, sample in enumerate(written, start=1):
        sample["row"] = k   # no header row: data starts on spreadsheet row 1
    rule1 = [[n, f"s{n}", i + 1] for i, n in enumerate(SUBJECT_NUMBERS)]
    rule2 = [[int(code), name, stimulus] for code, name, stimulus in VIDEOS]   # codes as numbers (101)
    write_sheet(base / annotation, None, rows, sheet="CASFEcode_final",
                extra_sheets={"naming rule1": rule1, "naming rule2": rule2})
    micro = sum(s["type"] == "micro-expression" for s in written)
    return {"root": root, "annotation": base / annotation, "rawpic": rawpic, "samples": written,
            "micro": micro, "macro": len(written) - micro}
