"""TFDS builder of CASME (Yan et al., FG 2013), read from the user's licensed copy.

The annotation file and folder layout are those meb's loaders read (reference/corpora.md section 4;
meb `datasets.py` Casme, `datasets_old.py` casme / casme_raw): the original CASME coding file's name
is unknown, meb calls it `casme.xlsx`. The reader (`read_records`) turns it into clip records with the
`QUIRKS` table applied; the shared base (tfds_builders/corpus_builder.py) validates frames on disk,
aligns raw frames and writes one split per subject. See README.md next to this file.

Rules (reference/corpora.md section 0):
- the header row is found by its column names (`Subject`, `Filename`, `OnsetF`, `ApexF1`, `OffsetF`,
  `Emotion`), not assumed to be row 1;
- subject ids are `sub01`, ... (the file writes 1, 01 or sub01; the folders are sub01);
- frames are ordered by the trailing integer of their file name (`reg_EP02_01-046.jpg` -> 46; the
  zero-padding changes from data row 92 on, which does not matter here);
- AUs: the column whose header is `AU`/`AUs` or contains `Action Unit` (the header is unconfirmed; meb
  reads a column `AU`); without one the corpus is built without AUs (`has_aus` False in the metadata,
  all-zero AU vectors);
- meb's fixes are given by 0-based data row. Each is applied to that row only when the row's annotated
  onset/offset do not fit the frames on disk (both variants hold onset..offset only, so the first and
  last frame numbers on disk are the onset and offset) and meb's values do; each applied fix is
  recorded in the dataset metadata (`fixes`) and logged. "Data row" = position among the
  non-blank rows below the header (meb's pandas index).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.data.archive import (ArchiveError, au_vector, find_dir, find_file, frame_numbers, frames_fit,
                                  normalise_emotion, parse_int, read_table, subject_digits)
from tfds_builders.corpus_builder import (ClipRecord, CorpusConfig, FrameCorpusBuilder, disambiguate, log_fixes,
                                          records_from_rows, unread_clip_id)

log = logging.getLogger(__name__)

CORPUS = "casme"
FPS = 60.0

# meb's name first; the CASME release's own file name is unknown (corpora.md section 4).
ANNOTATION_FILES = ("casme.xlsx", "CASME.xlsx", "casme.xls", "CASME.xls")
COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "OnsetF", "apex": "ApexF1", "offset": "OffsetF",
           "emotion": "Emotion"}   # ApexF2 (a second apex) is not used

# Frame folder of each variant (each holds sub01/<Filename>/<frames>, onset..offset only), tried in order.
VARIANTS = {
    "cropped": ("Cropped/Cropped", "Cropped", "Cropped2"),      # reg_{Filename}-{j}.jpg; meb linked "Cropped2"
    "raw_selected": ("CASME_raw_selected/CASME_raw_selected", "CASME_raw_selected", "CASME_RAW_selected"),
}

# Emotion strings -> taxonomy names. `amusement` is the CASME paper's name of the happiness class.
EMOTIONS = {"happiness": "happiness", "amusement": "happiness", "surprise": "surprise", "disgust": "disgust",
            "repression": "repression", "tense": "tense", "contempt": "contempt", "fear": "fear",
            "sadness": "sadness"}

APEX_MISSING = ("/", "", "-")

# Every known quirk of CASME and its fix; the code below applies exactly these.
QUIRKS = {
    # meb datasets.py (Casme.data_frame): "Fix mistakes in the files based on the image folders",
    # by 0-based data row: onset of rows 40, 42, 43 -> 100, 101, 57; offset of rows 40, 42, 43, 54, 140
    # -> 149, 119, 74, 40, 142; "Apex to middle frame": apex of rows 40, 42, 43 -> 120, 110, 65.
    # (meb's older datasets_old.py set row 40's onset to 108 and had no row-140 fix; the current values
    # are used.) Applied only where the row's onset/offset do not fit the frames on disk and these do.
    "row_fixes": {
        40: {"onset": 100, "offset": 149, "apex": 120},
        42: {"onset": 101, "offset": 119, "apex": 110},
        43: {"onset": 57, "offset": 74, "apex": 65},
        54: {"offset": 40},
        140: {"offset": 142},
    },
    # ApexF1 empty or "/" (none known; the same rule as the other corpora): the base builder sets
    # apex = (onset + offset) // 2 and records it.
    "apex_missing_rule": "midpoint",
}


def find_annotation(manual_dir: Path) -> Path:
    return find_file(manual_dir, ANNOTATION_FILES, corpus=CORPUS, what="CASME annotation file (casme.xlsx)")


def find_frames_root(manual_dir: Path, variant: str) -> Path:
    """The variant's frame folder (holding sub01/...), in manual_dir or one folder below it."""
    if variant not in VARIANTS:
        raise ArchiveError(f"{CORPUS}: unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
    return find_dir(manual_dir, VARIANTS[variant], corpus=CORPUS, what=f"frame folder for variant {variant!r}",
                    below=True)


def subject_id(text: str, *, where: str) -> str:
    """`1`, `01`, `sub01` -> `sub01`."""
    return f"sub{subject_digits(text, corpus=CORPUS, where=where):02d}"


def au_column(header: tuple[str, ...]) -> str | None:
    """The AU column's header: `AU`, `AUs`, `AU code(s)` or one containing `Action Unit`; None if none."""
    for name in header:
        norm = re.sub(r"\s+", " ", name).strip().lower()
        if re.fullmatch(r"aus?( codes?)?", norm) or "action unit" in norm:
            return name
    return None


def read_records(manual_dir: Path, variant: str = "cropped", *,
                 skip_bad_samples: bool = False) -> tuple[list[ClipRecord], list[dict]]:
    """CASME clip records of `variant` with the quirk table applied, and the exclusions.

    A row that cannot be read (unknown emotion, a non-numeric frame cell, no subject number) raises an
    ArchiveError naming the file and row, or with skip_bad_samples is returned as an exclusion
    {'clip', 'where', 'reason'}. Missing folders and frames are checked by the base builder.
    Records carry aus=None when the file has no AU column.
    """
    manual_dir = Path(manual_dir)
    table = read_table(find_annotation(manual_dir), tuple(COLUMNS.values()), corpus=CORPUS)
    aus_column = au_column(table.header)
    if aus_column is None:
        log.warning("%s: %s has no AU column (a header `AU` or `Action Units`); building without AUs",
                    CORPUS, table.path.name)
    frames_root = find_frames_root(manual_dir, variant)
    records, excluded = records_from_rows(
        table, lambda i, row, where: _record(row, i, where, frames_root, aus_column), _exclusion_clip,
        skip_bad_samples=skip_bad_samples)
    disambiguate(records)
    log_fixes(CORPUS, records)
    return records, excluded


def _exclusion_clip(row: dict, where: str) -> str:
    return unread_clip_id(CORPUS, row[COLUMNS["subject"]], row[COLUMNS["clip"]], subject_id=subject_id, where=where)


def _record(row: dict, i: int, where: str, frames_root: Path, aus_column: str | None) -> ClipRecord:
    subject = subject_id(row[COLUMNS["subject"]], where=where)
    clip = row[COLUMNS["clip"]].strip()
    if not clip:
        raise ArchiveError(f"{CORPUS}: {where}: the Filename cell is empty, expected a clip folder name")
    emotion = normalise_emotion(row[COLUMNS["emotion"]], EMOTIONS, corpus=CORPUS, where=where)
    onset = parse_int(row[COLUMNS["onset"]], corpus=CORPUS, where=where, field="OnsetF")
    offset = parse_int(row[COLUMNS["offset"]], corpus=CORPUS, where=where, field="OffsetF")
    apex_cell = row[COLUMNS["apex"]].strip()
    apex = None if apex_cell in APEX_MISSING else parse_int(apex_cell, corpus=CORPUS, where=where, field="ApexF1")
    folder = frames_root / subject / clip
    fixes = []
    fix = QUIRKS["row_fixes"].get(i)
    if fix is not None:
        new_onset, new_offset = fix.get("onset", onset), fix.get("offset", offset)
        on_disk = frame_numbers(folder, corpus=CORPUS)
        if (not frames_fit(on_disk, onset, offset, selected=True)
                and frames_fit(on_disk, new_onset, new_offset, selected=True)
                and (new_onset, new_offset) != (onset, offset)):
            new_apex = fix.get("apex", apex)
            changes = [f"{name} {old} -> {new}" for name, old, new in
                       (("onset", onset, new_onset), ("apex", apex, new_apex), ("offset", offset, new_offset))
                       if old != new]
            fixes.append(f"{', '.join(changes)} (meb: mistake in file, data row {i})")
            onset, apex, offset = new_onset, new_apex, new_offset
    aus = au_vector(row[aus_column]) if aus_column else None
    return ClipRecord(subject=subject, clip=clip, emotion=emotion, folder=folder, where=where, onset=onset,
                      apex=apex, offset=offset, aus=aus, fixes=fixes)


_INSTRUCTIONS = """\
CASME is licensed by the Institute of Psychology, Chinese Academy of Sciences: request it at
http://casme.psych.ac.cn/casme/e1 (signed licence agreement), then put into manual_dir:
  manual_dir/casme.xlsx       the annotation sheet (header Subject, Filename, OnsetF, ApexF1, ApexF2,
                              OffsetF, Emotion and an AU column `AU`; meb's name for it)
  manual_dir/Cropped/sub01/EP02_01/reg_EP02_01-46.jpg           config `cropped`
  manual_dir/CASME_raw_selected/sub01/EP02_01/EP02_01-46.jpg    config `raw_selected`
Each clip folder holds the onset..offset frames only. Only the folder of the config you build is
needed, plus the annotation sheet.
"""


class Builder(FrameCorpusBuilder):
    """CASME: spontaneous micro-expressions of 19 subjects at 60 fps (see README.md)."""

    DATASET = CORPUS
    FPS = FPS
    LABEL_SCHEMES = ("casme_8", "megc3")
    HAS_AUS = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: cropped and raw_selected configs; meb's row fixes."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = [
        CorpusConfig(name="cropped", variant="cropped",
                     description="The face crops (Cropped/), onset..offset, stored as shipped."),
        CorpusConfig(name="raw_selected", variant="raw_selected", align=True, image_size=224,
                     description="CASME_raw_selected/ (onset..offset), faces aligned and cropped to 224."),
    ]

    def read_records(self, manual_dir: Path) -> tuple[list[ClipRecord], list[dict]]:
        config = self.builder_config
        records, excluded = read_records(manual_dir, config.variant, skip_bad_samples=config.skip_bad_samples)
        # No AU column: say so in the metadata (the base writes `has_aus` from this attribute).
        self.HAS_AUS = all(r.aus is not None for r in records)
        return records, excluded
