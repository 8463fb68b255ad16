"""TFDS builder of CASME II (Yan et al., PLoS ONE 2014), read from the user's licensed copy.

The reader (`read_records`) turns the coding file and the folder layout into clip records, with every
known quirk fixed by the `QUIRKS` table below; the shared base (tfds_builders/corpus_builder.py)
validates frames on disk, fills known-missing frames, aligns raw frames and writes one split per
subject. Layout, configs and label schemes: README.md next to this file; sources:
reference/corpora.md section 1 and reference-implementations.md sections 1 (merlib) and 3 (meb).

Rules (reference/corpora.md section 0):
- the coding file's header row is found by its column names, not assumed to be row 1;
- subject ids are `sub01`..`sub26` (the coding file writes 1, 01 or sub01; the folders are sub01);
- frames are ordered by the trailing integer of their file name (`reg_img46.jpg` -> 46);
- a quirk fix that meb gives only by its 0-based data-row index is applied to that row only when the
  row's own content shows the quirk (its apex cell is `/`, or its offset does not fit the frames on
  disk) and the fixed value fits the frames on disk; every applied fix is recorded in the dataset
  metadata (`fixes`) and logged. "Data row" = position among the non-blank rows below the
  header, which is meb's pandas index for the coding file.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.data.archive import (ArchiveError, au_vector, find_dir, find_file, frame_numbers, frames_fit,
                                  normalise_emotion, parse_int, read_table, subject_digits)
from tfds_builders.corpus_builder import (ClipRecord, CorpusConfig, FrameCorpusBuilder, disambiguate, log_fixes,
                                          records_from_rows, unread_clip_id)

CORPUS = "casme2"
FPS = 200.0

# Annotation files, most common first (reference/corpora.md section 1). The .xls needs `xlrd`.
ANNOTATION_FILES = ("CASME2-coding-20140508.xlsx", "CASME2-coding-20190701.xlsx", "CASME2-coding-updated.xlsx",
                    "CASME2_label_Ver_2.xls", "CASME2-coding*.xlsx", "CASME2-coding*.xls")
# Header strings of the coding file (row 1; the two blank header cells are ignored).
COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
           "offset": "OffsetFrame", "aus": "Action Units", "emotion": "Estimated Emotion"}

# Frame folder of each variant under manual_dir, in the order tried (nested copies first); each holds
# sub01/EP02_01f/<frames>. `selected`: the folder holds onset..offset only, so its first and last
# frame numbers are the onset and offset.
VARIANTS = {
    "cropped": {"dirs": ("Cropped/Cropped", "Cropped", "Cropped_original"), "selected": True},   # reg_img46.jpg
    "raw_selected": {"dirs": ("CASME2_RAW_selected/CASME2_RAW_selected", "CASME2_RAW_selected"),
                     "selected": True},                                                       # img46.jpg
    "raw": {"dirs": ("CASME2-RAW/CASME2-RAW", "CASME2-RAW", "CASME2_RAW"), "selected": False},  # img1.jpg..
}

# Emotion strings of the coding file (lower case; `others` is the class name) -> taxonomy names.
EMOTIONS = {"happiness": "happiness", "surprise": "surprise", "disgust": "disgust", "repression": "repression",
            "fear": "fear", "sadness": "sadness", "others": "others", "other": "others"}
# MEGC2019 3-class (challenge PDF; reference/corpora.md section 8): for CASME II negative is disgust and
# repression only; others, fear and sadness are not part of the protocol (-1).
MEGC3 = {"disgust": 0, "repression": 0, "happiness": 1, "surprise": 2}

APEX_MISSING = ("/", "", "-")   # ApexFrame cells that mean "no apex annotated"

# Every known quirk of CASME II and its fix; the code below applies exactly these.
QUIRKS = {
    # ApexFrame is "/" in about 21 rows (corpora.md section 1). Default rule (merlib clean_doc.py):
    # apex = (onset + offset) // 2, recorded per clip by the base builder. With missing_apex="meb",
    # meb's optical-flow estimates below are used instead where the row is identifiable (next entry).
    "apex_missing_rule": "midpoint",
    # meb datasets.py (Casme2.data_frame): "Missing apex in file, change based on optical flow", by
    # 0-based data row of meb's 256-row CASME2-coding-updated.xlsx. meb's file has one row more than
    # the 255-row coding files ("Sample 222 in megc but not in individual casme2"; its older loader
    # drops row 222 and then uses 233, 236, 237 for 234, 237, 238), so in a 255-row file rows from 222
    # on are meb's row + 1. Used only with missing_apex="meb", only where the row's apex cell is "/"
    # and the estimate lies within its onset..offset (after the offset fix below).
    "meb_estimated_apex": {29: 279, 35: 68, 43: 77, 45: 81, 51: 166, 53: 100, 60: 78, 117: 187, 118: 89,
                           126: 80, 136: 88, 147: 134, 155: 231, 168: 53, 170: 329, 177: 111, 202: 91,
                           203: 103, 234: 98, 237: 153, 238: 98},
    # meb datasets.py (Casme2.data_frame): "Mistake in file, change offset to 91" (df.loc[60, "offset"]).
    # Row-index rule (module docstring): applied when data row 60's apex cell is "/" (meb lists row 60
    # among its missing apexes) or its offset does not fit the frames on disk, and frame 91 does fit.
    "row_offset": {60: 91},
    # merlib (corpora.md section 1): Cropped/sub16/EP01_08 is missing frames. Filled with the previous
    # frame (meb's j-1 fallback for missing frames), recorded per clip by the base builder.
    "fill_missing": {("sub16", "EP01_08"): ("cropped",)},
    # Irregular clip names (EP01_2, EP09f, EP06_02_01; corpora.md section 1) need no fix: the Filename
    # cell is the folder name as written. AU strings with L/R prefixes (`R12+R15`) keep their
    # numbers (archive.parse_aus); AUs outside taxonomy.AU_VOCAB are left out of the AU vector.
}
_MEB_ROWS_WITH_EXTRA = 256   # meb's coding file, with the MEGC-only row 222
_MEB_EXTRA_ROW = 222


@dataclasses.dataclass(eq=False)
class Casme2Config(CorpusConfig):
    """CorpusConfig plus the missing-apex rule: `midpoint` (merlib, default) or `meb` (meb's
    optical-flow estimates where the row is identifiable, else the midpoint)."""
    missing_apex: str = "midpoint"


def find_annotation(manual_dir: Path) -> Path:
    """The CASME II coding file under manual_dir."""
    return find_file(manual_dir, ANNOTATION_FILES, corpus=CORPUS,
                     what="CASME II coding file (e.g. CASME2-coding-20140508.xlsx)")


def find_frames_root(manual_dir: Path, variant: str) -> Path:
    """The variant's frame folder (holding sub01/...), in manual_dir or one folder below it."""
    if variant not in VARIANTS:
        raise ArchiveError(f"{CORPUS}: unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
    return find_dir(manual_dir, VARIANTS[variant]["dirs"], corpus=CORPUS,
                    what=f"frame folder for variant {variant!r}", below=True)


def subject_id(text: str, *, where: str) -> str:
    """`1`, `01`, `sub01` -> `sub01`."""
    return f"sub{subject_digits(text, corpus=CORPUS, where=where):02d}"


def read_records(manual_dir: Path, variant: str = "cropped", *, missing_apex: str = "midpoint",
                 skip_bad_samples: bool = False) -> tuple[list[ClipRecord], list[dict]]:
    """CASME II clip records of `variant` with the quirk table applied, and the exclusions.

    A row that cannot be read (unknown emotion, a non-numeric frame cell, no subject number) raises an
    ArchiveError naming the file and row, or with skip_bad_samples is returned as an exclusion
    {'clip', 'where', 'reason'}. Missing folders and frames are checked by the base builder.
    """
    if missing_apex not in ("midpoint", "meb"):
        raise ArchiveError(f"{CORPUS}: missing_apex is {missing_apex!r}, expected 'midpoint' or 'meb'")
    manual_dir = Path(manual_dir)
    table = read_table(find_annotation(manual_dir), tuple(COLUMNS.values()), corpus=CORPUS)
    frames_root = find_frames_root(manual_dir, variant)
    selected = VARIANTS[variant]["selected"]
    num_rows = len(table.rows)
    records, excluded = records_from_rows(
        table, lambda i, row, where: _record(row, i, num_rows, where, frames_root, variant, selected, missing_apex),
        _exclusion_clip, skip_bad_samples=skip_bad_samples)
    disambiguate(records)
    log_fixes(CORPUS, records)
    return records, excluded


def _exclusion_clip(row: dict, where: str) -> str:
    return unread_clip_id(CORPUS, row[COLUMNS["subject"]], row[COLUMNS["clip"]], subject_id=subject_id, where=where)


def _record(row: dict, i: int, num_rows: int, where: str, frames_root: Path, variant: str, selected: bool,
            missing_apex: str) -> ClipRecord:
    subject = subject_id(row[COLUMNS["subject"]], where=where)
    clip = row[COLUMNS["clip"]].strip()
    if not clip:
        raise ArchiveError(f"{CORPUS}: {where}: the Filename cell is empty, expected a clip folder name")
    emotion = normalise_emotion(row[COLUMNS["emotion"]], EMOTIONS, corpus=CORPUS, where=where)
    onset = parse_int(row[COLUMNS["onset"]], corpus=CORPUS, where=where, field="OnsetFrame")
    offset = parse_int(row[COLUMNS["offset"]], corpus=CORPUS, where=where, field="OffsetFrame")
    apex_cell = row[COLUMNS["apex"]].strip()
    apex = None if apex_cell in APEX_MISSING else parse_int(apex_cell, corpus=CORPUS, where=where,
                                                            field="ApexFrame")
    folder = frames_root / subject / clip
    fixes = []
    fixed_offset = QUIRKS["row_offset"].get(i)
    if fixed_offset is not None and offset != fixed_offset:
        on_disk = frame_numbers(folder, corpus=CORPUS)
        shows_quirk = apex is None or not frames_fit(on_disk, onset, offset, selected=selected)
        if shows_quirk and frames_fit(on_disk, onset, fixed_offset, selected=selected):
            fixes.append(f"offset {offset} -> {fixed_offset} (meb: mistake in file, data row {i})")
            offset = fixed_offset

    if apex is None:
        estimate = _meb_apex(i, num_rows) if missing_apex == "meb" else None
        if estimate is not None and onset <= estimate <= offset:
            apex = estimate
            fixes.append(f"ApexFrame is {apex_cell!r}: apex = {estimate} (meb's optical-flow estimate, data row {i})")
        # else: the base builder sets apex = (onset + offset) // 2 and records it

    fill = variant in QUIRKS["fill_missing"].get((subject, clip), ())
    return ClipRecord(subject=subject, clip=clip, emotion=emotion, folder=folder, where=where, onset=onset,
                      apex=apex, offset=offset, aus=au_vector(row[COLUMNS["aus"]]),
                      label_3class=MEGC3.get(emotion, -1), fill_missing=fill, fixes=fixes)


def _meb_apex(i: int, num_rows: int) -> int | None:
    """meb's estimated apex for data row i of a coding file with num_rows rows, when identifiable."""
    if i < _MEB_EXTRA_ROW or num_rows == _MEB_ROWS_WITH_EXTRA:
        return QUIRKS["meb_estimated_apex"].get(i)
    if num_rows == _MEB_ROWS_WITH_EXTRA - 1:
        return QUIRKS["meb_estimated_apex"].get(i + 1)
    return None


_INSTRUCTIONS = """\
CASME II is licensed by the Institute of Psychology, Chinese Academy of Sciences: request it at
http://fu.psych.ac.cn/CASME/casme2-en.php (signed licence agreement), then unpack it into manual_dir
as shipped:
  manual_dir/CASME2-coding-20140508.xlsx        (or CASME2-coding-20190701.xlsx, meb's
                                                CASME2-coding-updated.xlsx, CASME2_label_Ver_2.xls)
  manual_dir/Cropped/sub01/EP02_01f/reg_img46.jpg   config `cropped` (also Cropped/Cropped/...)
  manual_dir/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg   config `raw_selected`
  manual_dir/CASME2-RAW/sub01/EP02_01f/img1.jpg     config `raw`
Only the folder of the config you build is needed, plus the coding file.
"""


class Builder(FrameCorpusBuilder):
    """CASME II: 255 micro-expression clips of 26 subjects at 200 fps (see README.md)."""

    DATASET = CORPUS
    FPS = FPS
    LABEL_SCHEMES = ("casme2_7", "casme2_5", "megc3")
    HAS_AUS = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: cropped, raw_selected and raw configs; quirk table."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = [
        Casme2Config(name="cropped", variant="cropped",
                     description="The corpus's own face crops (Cropped/), onset..offset, stored as shipped."),
        Casme2Config(name="raw_selected", variant="raw_selected", align=True, image_size=224,
                     description="CASME2_RAW_selected/ (onset..offset), faces aligned and cropped to 224."),
        Casme2Config(name="raw", variant="raw", align=True, image_size=224,
                     description="CASME2-RAW/ full clips, onset..offset taken, faces aligned and cropped to 224."),
    ]

    def read_records(self, manual_dir: Path) -> tuple[list[ClipRecord], list[dict]]:
        config = self.builder_config
        return read_records(manual_dir, config.variant, missing_apex=getattr(config, "missing_apex", "midpoint"),
                            skip_bad_samples=config.skip_bad_samples)
