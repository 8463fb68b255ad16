"""TFDS builder of CAS(ME)^3 Part A micro-expressions, read from the user's licensed copy (README.md).

Part A ships one frame folder per recorded video, colour and depth, and label workbooks
(reference/corpora.md section 6; the official repository jingtingEmmaLi/CAS-ME-3):

    part_A/data/part_A_split/part_A/spNO.1/a/color/355.jpg     frame numbers are the file numbers
    part_A/data/part_A_split/part_A/spNO.1/a/depth/355.png
    cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   (meb's 860 MEs; v1: 921 rows; .xls needs xlrd)
        Subject | Filename | Onset | Apex | Offset | AU | Objective class | emotion
    CAS(ME)3_part_A_v2.xls, sheet `AU+Emotion`: Subject | Filename | Onset | Apex | Offset | AU |
        Expression type | Objective class  (micro- and macro-expressions, no emotion column)

A sample is one annotated micro-expression: frames onset..offset of its video's `color/` folder (several
MEs share a video). The label is the `emotion` column. A workbook without an emotion column (the
`AU+Emotion` sheet) cannot label samples: `Objective class` is an AU-based class, not an emotion, and
the builder does not guess emotions from it; the error says which file to use instead. Macro-expression
rows (when an `Expression type` column exists) are counted in `info.metadata["macro_expressions"]`.
Subjects keep the folder name `spNO.<n>` (split `subject_casme3_spNO_1`).

Depth (config `depth`): `depth/<n>.png` of every stored frame, as uint16 PNG, warped with the colour
frames' alignment (recomputed from the same onset frame) or resized like them.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from mer_jax.data import schema
from mer_jax.data.archive import (ArchiveError, au_vector, list_frames, normalise_emotion, parse_int,
                                  read_table)
from tfds_builders.corpus_builder import ClipRecord, CorpusConfig, FrameCorpusBuilder

log = logging.getLogger(__name__)

DATASET = "casme3"
FPS = 30.0
VARIANTS = ("part_a",)

# Annotation workbooks in order of preference (file names compared case-insensitively).
ANNOTATIONS = (
    ("cas(me)3_part_a_me_label_jpgindex_v2.xlsx", None, "v2"),   # meb's file: 860 MEs
    ("cas(me)3_part_a_me_label_jpgindex_v2.xls", None, "v2"),
    ("cas(me)3_part_a_me_label_jpgindex_v1.xlsx", None, "v1"),   # official: 921 MEs
    ("cas(me)3_part_a_me_label_jpgindex_v1.xls", None, "v1"),
    ("cas(me)3_part_a_v2.xlsx", "AU+Emotion", "part_a_v2"),      # official: MEs and macro-expressions
    ("cas(me)3_part_a_v2.xls", "AU+Emotion", "part_a_v2"),
)
REQUIRED = ("Subject", "Filename", "Onset", "Apex", "Offset")
# Frame folders: the folder holding spNO.<n>/ subject folders, relative to manual_dir.
FRAME_ROOTS = ("part_A/data/part_A_split/part_A", "data/part_A_split/part_A", "part_A_split/part_A",
               "part_A", ".")

# `emotion` column -> taxonomy name (`Others` also occurs, case is ignored).
EMOTIONS = {"disgust": "disgust", "surprise": "surprise", "others": "others", "other": "others",
            "fear": "fear", "anger": "anger", "sad": "sadness", "sadness": "sadness",
            "happy": "happiness", "happiness": "happiness"}

# Frames dropped by the camera (meb: "frames are dropped in places"): gaps of at most this many
# consecutive frames inside a video's frame range are filled with the previous frame (recorded).
MAX_DROPPED_RUN = 3

# Every known quirk of the Part A labels, one table. General rules (triggered by a row's content):
QUIRKS = {
    # reference/corpora.md section 6: one Filename is an uppercase `J`; folders are lower case.
    "filename_case": "Filename {raw!r} lower-cased to {fixed!r} (folders are lower case)",
    # meb (tools/extract_casme3_part_a.py, datasets.py): the same (Subject, Filename) holds several MEs;
    # the 2nd, 3rd... get the suffix 2, 3... (`a`, `a2`, `a3`), in row order.
    "duplicate": "clip {subject}/{filename} repeated: stored as {clip}",
    # meb (its row 750 onset/apex 0 -> 1): an onset 0 where `0.jpg` does not exist is frame 1 (apex too).
    "zero_frame": "{field} 0 but 0.jpg does not exist: {field} = 1",
    # meb: "frames are dropped in places": short gaps inside the video are filled (MAX_DROPPED_RUN).
    "dropped": "frames {frames} dropped by the camera: filled with the previous frame",
}
# meb's value fixes, keyed by its 0-based data-row index in `..._JpgIndex_v2.xlsx` (meb datasets.py).
# Applied only to that file, and only when the row as annotated is inconsistent (not onset <= apex <=
# offset, or a key frame outside the frames on disk) and the fixed value makes it consistent; recorded.
MEB_FIXES: dict[int, dict[str, int]] = {
    128: {"apex": 160},
    749: {"onset": 2647},
    708: {"offset": 34},
    796: {"offset": 1845},
    798: {"offset": 2403},
}

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
CAS(ME)^3 is licensed by the Institute of Psychology, Chinese Academy of Sciences; request it at
http://casme.psych.ac.cn/casme/e4 . Unpack Part A so that manual_dir holds
    <manual_dir>/part_A/data/part_A_split/part_A/spNO.1/a/color/355.jpg   (and depth/355.png)
and a label workbook with an `emotion` column anywhere under manual_dir, e.g.
    <manual_dir>/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx     (or ..._v1.xlsx; .xls files need xlrd)
Then run e.g. `tfds build tfds_builders/casme3 --manual_dir=<manual_dir>`.
"""


def find_frames_root(manual_dir: Path) -> Path:
    for name in FRAME_ROOTS:
        folder = manual_dir / name
        if folder.is_dir() and any(p.is_dir() and p.name.lower().startswith("spno") for p in folder.iterdir()):
            return folder
    raise ArchiveError(f"{DATASET}: no Part A frames in {manual_dir}; expected spNO.<n>/<video>/color/<n>.jpg "
                       f"under one of {list(FRAME_ROOTS[:4])}")


def find_annotation(manual_dir: Path) -> tuple[Path, str | None, str]:
    """(workbook, sheet, version) of the preferred label file anywhere under manual_dir."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(manual_dir):
        dirs[:] = sorted(d for d in dirs if not d.lower().startswith("spno") and d.lower() not in ("color", "depth"))
        for name in files:
            found.setdefault(name.lower(), Path(folder) / name)
    for name, sheet, version in ANNOTATIONS:
        if name in found:
            return found[name], sheet, version
    raise ArchiveError(f"{DATASET}: no Part A label workbook under {manual_dir}; expected one of "
                       f"{[n for n, _, _ in ANNOTATIONS]} (case ignored)")


class _Frames:
    """Frame numbers on disk per video folder, listed once."""

    def __init__(self):
        self._cache: dict[Path, list[int]] = {}

    def numbers(self, folder: Path, where: str) -> list[int]:
        if folder not in self._cache:
            self._cache[folder] = list(list_frames(folder, corpus=DATASET, where=where))
        return self._cache[folder]


def read_annotations(manual_dir, variant: str = "part_a", *, skip_bad_samples: bool = False
                     ) -> tuple[list[ClipRecord], list[dict], dict]:
    """Part A's micro-expression records, exclusions and a summary {'annotation', 'macro_expressions'}."""
    if variant not in VARIANTS:
        raise ArchiveError(f"{DATASET}: unknown variant {variant!r}; expected one of {VARIANTS}")
    manual_dir = Path(manual_dir)
    if not manual_dir.is_dir():
        raise ArchiveError(f"{DATASET}: manual_dir {manual_dir} does not exist")
    frames_root = find_frames_root(manual_dir)
    path, sheet, version = find_annotation(manual_dir)
    table = read_table(path, REQUIRED, corpus=DATASET, sheet=sheet)
    columns = {c.strip().lower(): c for c in table.header}
    if "emotion" not in columns:
        raise ArchiveError(
            f"{DATASET}: {path.name}{f', sheet {sheet!r}' if sheet else ''} has no emotion column (columns "
            f"{list(table.header)}): samples cannot be labelled from it (`Objective class` is an AU-based "
            f"class, not an emotion). Put cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx (or _v1) under manual_dir.")
    emotion_col, au_col, type_col = columns["emotion"], columns.get("au"), columns.get("expression type")
    frames = _Frames()
    records, excluded, macro = [], [], 0
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(table.rows):
        where = table.where(i)
        if type_col is not None and "micro" not in row[type_col].lower():
            if "macro" not in row[type_col].lower():
                raise ArchiveError(f"{DATASET}: {where}: Expression type is {row[type_col]!r}, expected "
                                   f"Micro-expression or Macro-expression")
            macro += 1
            continue
        try:
            record = _record(row, i, where, version, frames_root, frames, emotion_col, au_col)
        except ArchiveError as error:
            if not skip_bad_samples:
                raise
            excluded.append({"clip": f"{DATASET}/{row['Subject']}/{row['Filename']}", "where": where,
                             "reason": str(error)})
            continue
        key = (record.subject, record.clip)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            clip = f"{record.clip}{seen[key]}"
            record.fixes.append(QUIRKS["duplicate"].format(subject=record.subject, filename=record.clip, clip=clip))
            record.clip = clip
        records.append(record)
    return records, excluded, {"annotation": path.name, "macro_expressions": macro}


def read_records(manual_dir, variant: str = "part_a", *, skip_bad_samples: bool = False
                 ) -> tuple[list[ClipRecord], list[dict]]:
    """CAS(ME)^3 Part A's micro-expression clip records with quirks fixed, and its exclusions."""
    records, excluded, _ = read_annotations(manual_dir, variant, skip_bad_samples=skip_bad_samples)
    return records, excluded


def _subject_folder(frames_root: Path, text: str, where: str) -> Path:
    number = None
    match = re.search(r"(\d+)\s*$", text.strip())
    if match:
        number = int(match.group(1))
    if number is None:
        raise ArchiveError(f"{DATASET}: {where}: Subject is {text!r}, expected spNO.<n> or a number")
    for name in (text.strip(), f"spNO.{number}"):
        if name and (frames_root / name).is_dir():
            return frames_root / name
    raise ArchiveError(f"{DATASET}: {where}: no subject folder {frames_root / f'spNO.{number}'}")


def _record(row: dict, index: int, where: str, version: str, frames_root: Path, frames: _Frames,
            emotion_col: str, au_col: str | None) -> ClipRecord:
    fixes = []
    subject_dir = _subject_folder(frames_root, row["Subject"], where)
    raw_name = row["Filename"].strip()
    filename = raw_name.lower()
    if filename != raw_name:
        fixes.append(QUIRKS["filename_case"].format(raw=raw_name, fixed=filename))
    folder = subject_dir / filename / "color"
    if not folder.is_dir():
        raise ArchiveError(f"{DATASET}: {where}: clip folder {folder} does not exist")
    emotion = normalise_emotion(row[emotion_col], EMOTIONS, corpus=DATASET, where=f"{where} (emotion)")
    values = {f: parse_int(row[f.capitalize()], corpus=DATASET, where=where, field=f.capitalize())
              for f in ("onset", "apex", "offset")}
    numbers = frames.numbers(folder, where)
    on_disk = set(numbers)
    for field in ("onset", "apex"):   # meb row 750: onset/apex 0 with no 0.jpg
        if values[field] == 0 and 0 not in on_disk and 1 in on_disk:
            values[field] = 1
            fixes.append(QUIRKS["zero_frame"].format(field=field))

    def consistent(v):
        return (v["onset"] <= v["apex"] <= v["offset"]
                and all(numbers[0] <= v[f] <= numbers[-1] for f in ("onset", "apex", "offset")))

    if version == "v2" and index in MEB_FIXES and not consistent(values):
        fixed = {**values, **MEB_FIXES[index]}
        if consistent(fixed):
            for field, value in MEB_FIXES[index].items():
                fixes.append(f"meb fix of data row {index}: {field} {values[field]} -> {value}")
            values = fixed
    missing = [n for n in range(values["onset"], values["offset"] + 1) if n not in on_disk]
    fill = False
    if (missing and values["onset"] in on_disk and values["offset"] <= numbers[-1]
            and _longest_run(missing) <= MAX_DROPPED_RUN):
        fill = True   # the base class fills them with the previous frame
    if fill:
        fixes.append(QUIRKS["dropped"].format(frames=", ".join(map(str, missing))))
    number = re.search(r"(\d+)$", subject_dir.name)
    subject = f"spNO.{int(number.group(1))}" if number else subject_dir.name
    aus = au_vector(row[au_col]) if au_col is not None else None
    return ClipRecord(subject=subject, clip=filename, emotion=emotion, folder=folder, where=where,
                      onset=values["onset"], apex=values["apex"], offset=values["offset"], aus=aus, fps=FPS,
                      fill_missing=fill, fixes=fixes)


def _longest_run(numbers: list[int]) -> int:
    longest, run, last = 0, 0, None
    for n in numbers:
        run = run + 1 if last is not None and n == last + 1 else 1
        longest, last = max(longest, run), n
    return longest


@dataclasses.dataclass(eq=False)
class Casme3Config(CorpusConfig):
    """CorpusConfig plus `with_depth`: also store the depth frames (schema field `depth`, uint16 PNG)."""
    with_depth: bool = False


class Builder(FrameCorpusBuilder):
    """CAS(ME)^3 Part A micro-expressions (colour, optionally depth), one split per subject."""

    DATASET = DATASET
    FPS = FPS
    LABEL_SCHEMES = ("megc3", "casme3_7")
    HAS_AUS = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: Part A micro-expressions, aligned colour, optional depth."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        Casme3Config(name="default", variant="part_a", align=True, image_size=224,
                     description="Part A colour frames onset..offset, face aligned and cropped to 224 x 224."),
        Casme3Config(name="depth", variant="part_a", align=True, image_size=224, with_depth=True,
                     description="As `default`, plus the depth frames warped the same way (uint16 PNG)."),
        Casme3Config(name="unaligned", variant="part_a",
                     description="Part A colour frames onset..offset as shipped (JPEG bytes unchanged)."),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _with_depth(self) -> bool:
        return bool(getattr(self.builder_config, "with_depth", False))

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(features=schema.features(with_depth=self._with_depth()),
                                              metadata=tfds.core.MetadataDict())

    def read_records(self, manual_dir: Path) -> tuple[list[ClipRecord], list[dict]]:
        config = self.builder_config
        records, excluded, summary = read_annotations(manual_dir, config.variant,
                                                      skip_bad_samples=config.skip_bad_samples)
        self.info.metadata.update(summary, with_depth=self._with_depth())
        return records, excluded

    def _generate_examples(self, plans):
        if not self._with_depth():
            yield from super()._generate_examples(plans)
            return
        by_key = {self._clip_id(plan.record): plan for plan in plans}
        for key, example in super()._generate_examples(plans):
            plan = by_key[key]
            try:
                example["depth"] = self._encoded_depth(plan)
            except ArchiveError as error:
                self._skip_or_raise(error, plan.record, self.info.metadata["excluded"])
                log.warning("%s: excluded %s: %s", self.name, key, error)
                continue
            yield key, example

    def _encoded_depth(self, plan) -> list[bytes]:
        """uint16 PNG of `depth/<n>.png` for every stored frame, transformed like the colour frames."""
        import cv2

        from mer_jax.data import face_align

        config = self.builder_config
        paths = [p.parent.parent / "depth" / f"{p.stem}.png" for p in plan.paths]
        depth = []
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise ArchiveError(f"{self.name}: {plan.record.where} (clip {plan.record.clip}): cannot read "
                                   f"depth frame {path} (missing, empty or not an image)")
            if image.ndim == 3:   # a depth map saved with 3 equal channels
                image = image[..., 0]
            depth.append(image.astype(np.uint16))
        color = cv2.imread(str(plan.paths[0]), cv2.IMREAD_COLOR)
        if color is not None and depth[0].shape != color.shape[:2]:   # register to the colour frame size
            size = (color.shape[1], color.shape[0])
            depth = [cv2.resize(d, size, interpolation=cv2.INTER_NEAREST) for d in depth]
        align = config.align if plan.record.align is None else plan.record.align
        if align:
            align_config = face_align.AlignConfig(output_size=config.image_size or 224, detector=config.detector)
            alignment = face_align.estimate_alignment(cv2.cvtColor(color, cv2.COLOR_BGR2RGB), align_config)
            depth = face_align.apply_alignment(depth, alignment, align_config.output_size)
        elif config.image_size > 0:
            size = (config.image_size, config.image_size)
            depth = [cv2.resize(d, size, interpolation=cv2.INTER_NEAREST) for d in depth]
        out = []
        for image in depth:
            ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., None] if image.ndim == 2 else image))
            if not ok:
                raise ArchiveError(f"{self.name}: cannot PNG-encode a depth frame of shape {image.shape}")
            out.append(encoded.tobytes())
        return out
