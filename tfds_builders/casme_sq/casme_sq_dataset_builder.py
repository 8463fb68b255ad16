"""TFDS builder of CAS(ME)^2 (CASME_sq) micro-expressions, read from the user's licensed copy (README.md).

CAS(ME)^2 ships long videos as frame folders and one annotation workbook (reference/corpora.md section 5):

    CAS(ME)^2/rawpic/s15/15_0101disgustingteeth/img001.jpg      frames of one long video, f"img{n:03d}.jpg"
    CAS(ME)^2/CAS(ME)^2code_final.xlsx                          (also `code_final.xlsx`)
        sheet CASFEcode_final (no header row): subject id (1-22) | clip (`disgust1_1`) | onset | apex |
            offset | AUs | emotion category | type (micro-/macro-expression) | self-reported emotion
        sheet naming rule1: `15 | s15 | 1`  (folder number | subject folder | subject id)
        sheet naming rule2: `0101 | disgust1 [| folder suffix]`  (video code | clip prefix)

A sample is one micro-expression row: its frames onset..offset are cut out of the long video's folder
(frame numbers count from the start of the long video; the smallest onset is 1). Macro-expression rows
(300 of 357) belong to a different task: they are not samples of this builder, not exclusions either;
their number is in `info.metadata["macro_expressions"]`. The label is the emotion category (column 7:
negative / positive / surprise / others); the self-reported emotion (column 9) is not stored.
Subjects are the rawpic folder names (`s15`, split `subject_casme_sq_s15`).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.data.archive import (ArchiveError, Table, au_vector, int_or_none, normalise_emotion, parse_int,
                                  read_headerless)
from tfds_builders.corpus_builder import ClipRecord, CorpusConfig, FrameCorpusBuilder

log = logging.getLogger(__name__)

DATASET = "casme_sq"
FPS = 30.0
VARIANTS = ("rawpic",)

ANNOTATION_NAMES = ("CAS(ME)^2code_final.xlsx", "code_final.xlsx", "CAS(ME)^2code_final*.xlsx",
                    "*code_final*.xlsx", "CAS(ME)^2code_final*.xls", "*code_final*.xls")
# Folders of a copy under manual_dir that may hold the workbook and `rawpic/` (manual_dir itself first).
ROOT_NAMES = (".", "CAS(ME)^2", "CAS(ME)2", "CASME_sq", "CASME^2")
MAIN_SHEET, RULE1_SHEET, RULE2_SHEET = "CASFEcode_final", "naming rule1", "naming rule2"
COLUMNS = ("subject_id", "clip", "onset", "apex", "offset", "aus", "emotion", "type", "self_report")

# Emotion category (column 7) -> taxonomy name.
EMOTIONS = {"negative": "negative", "positive": "positive", "surprise": "surprise",
            "others": "others", "other": "others"}
TYPES = {"micro-expression": "micro", "macro-expression": "macro"}

# Every known quirk of CAS(ME)^2's annotation and layout, each applied as a rule the row's own content
# triggers, and recorded as a fix of the sample:
QUIRKS = {
    # reference/corpora.md section 5 and the public ME2 / MEAN loaders: an offset of 0 means no offset
    # was coded: the apex is used as the offset.
    "offset_zero": "offset 0 (not coded): offset = apex",
    # same sources: an apex of 0 means no apex was coded: apex = (onset + offset) // 2 (the midpoint rule
    # of every mer_jax builder; the ME2 loader uses the unrounded midpoint).
    "apex_zero": "apex 0 (not coded): apex = (onset + offset) // 2",
    # naming rule2 spells happy2's folder `0503unnyfarting` (sic): folders are found by the
    # `<subject number>_<video code>` prefix, so the suffix's spelling never matters.
    "folder_suffix": "folders are matched by their `<nn>_<code>` prefix, whatever the suffix",
    # A public Kaggle notebook on CAS(ME)^2 found subject 23's `23_0502funnyerrors` inside `rawpic/s19/`
    # (unconfirmed in other copies): a long video missing from its subject's folder is looked up in the
    # other subject folders by its unique `<nn>_<code>` prefix, and the place is recorded.
    "misplaced_video": "long video found in another subject's folder",
}

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
CAS(ME)^2 is licensed by the Institute of Psychology, Chinese Academy of Sciences; request it at
http://casme.psych.ac.cn/casme/e3 . Unpack it so that manual_dir holds (directly or in a `CAS(ME)^2/`
folder) the annotation workbook and the long-video frames:
    <manual_dir>/CAS(ME)^2/CAS(ME)^2code_final.xlsx        (or code_final.xlsx)
    <manual_dir>/CAS(ME)^2/rawpic/s15/15_0101disgustingteeth/img001.jpg
Then run e.g. `tfds build tfds_builders/casme_sq --manual_dir=<manual_dir>`.
"""


def find_root(manual_dir: Path) -> tuple[Path, Path]:
    """(annotation workbook, rawpic folder) of a copy; only the copy's top folders are searched."""
    manual_dir = Path(manual_dir)
    if not manual_dir.is_dir():
        raise ArchiveError(f"{DATASET}: manual_dir {manual_dir} does not exist")
    tops = [manual_dir / n for n in ROOT_NAMES] + sorted(p for p in manual_dir.iterdir() if p.is_dir())
    for top in tops:
        if not (top / "rawpic").is_dir():
            continue
        for pattern in ANNOTATION_NAMES:
            found = sorted(top.glob(pattern))
            if found:
                return found[0], top / "rawpic"
        raise ArchiveError(f"{DATASET}: {top} has rawpic/ but no annotation workbook; expected one of "
                           f"{list(ANNOTATION_NAMES[:2])} next to it")
    raise ArchiveError(f"{DATASET}: no CAS(ME)^2 copy in {manual_dir}; expected a folder (manual_dir itself or "
                       f"one of {list(ROOT_NAMES[1:4])}) holding rawpic/ and CAS(ME)^2code_final.xlsx")


def _subject_folders(table: Table) -> dict[int, tuple[str, int]]:
    """naming rule1: subject id -> (subject folder `s15`, folder number 15)."""
    out = {}
    for i, row in enumerate(table.rows):
        folder = row["folder"].strip()
        try:
            subject_id = int(float(row["id"]))
        except ValueError:
            if i == 0:
                continue  # a header row
            raise ArchiveError(f"{DATASET}: {table.where(i)}: subject id is {row['id']!r}, expected an integer "
                               f"(rows look like `15 | s15 | 1`)") from None
        match = re.fullmatch(r"s(\d+)", folder, re.IGNORECASE)
        if match is None:
            raise ArchiveError(f"{DATASET}: {table.where(i)}: subject folder is {folder!r}, expected s<number>")
        number = int(match.group(1))
        out[subject_id] = (f"s{number}", number)
    if not out:
        raise ArchiveError(f"{DATASET}: {table.path.name}, sheet {RULE1_SHEET!r} maps no subject ids")
    return out


def _video_codes(table: Table) -> dict[str, str]:
    """naming rule2: clip prefix (`disgust1`) -> 4-digit video code (`0101`)."""
    out = {}
    for i, row in enumerate(table.rows):
        code, name = row["code"].strip(), row["name"].strip().lower()
        if not code.isdigit():
            if i == 0:
                continue  # a header row
            raise ArchiveError(f"{DATASET}: {table.where(i)}: video code is {code!r}, expected digits like 0101")
        out[name] = code.zfill(4)
    if not out:
        raise ArchiveError(f"{DATASET}: {table.path.name}, sheet {RULE2_SHEET!r} maps no clip names")
    return out


def read_annotations(manual_dir, variant: str = "rawpic", *, skip_bad_samples: bool = False
                     ) -> tuple[list[ClipRecord], list[dict], dict]:
    """The micro-expression records, exclusions and a summary {'macro_expressions', 'annotation'}."""
    if variant not in VARIANTS:
        raise ArchiveError(f"{DATASET}: unknown variant {variant!r}; expected one of {VARIANTS}")
    manual_dir = Path(manual_dir)
    workbook, rawpic = find_root(manual_dir)
    subjects = _subject_folders(read_headerless(workbook, ("number", "folder", "id"), corpus=DATASET,
                                                sheet=RULE1_SHEET))
    videos = _video_codes(read_headerless(workbook, ("code", "name"), corpus=DATASET, sheet=RULE2_SHEET))
    table = read_headerless(workbook, COLUMNS, corpus=DATASET, sheet=MAIN_SHEET)
    records, excluded, macro = [], [], 0
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(table.rows):
        where = table.where(i)
        if i == 0 and int_or_none(row["onset"]) is None and int_or_none(row["subject_id"]) is None:
            log.info("%s: %s looks like a header row: skipped", DATASET, where)
            continue
        kind = TYPES.get(row["type"].strip().lower())
        if kind is None:
            raise ArchiveError(f"{DATASET}: {where}: expression type is {row['type']!r}, expected one of "
                               f"{sorted(TYPES)}")
        if kind == "macro":
            macro += 1
            continue
        try:
            record = _record(row, where, subjects, videos, rawpic)
        except ArchiveError as error:
            if not skip_bad_samples:
                raise
            excluded.append({"clip": f"{DATASET}/row{table.row_numbers[i]}/{row['clip']}", "where": where,
                             "reason": str(error)})
            continue
        key = (record.subject, record.clip)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:  # the same clip name twice for one subject: keep both apart
            record.fixes.append(f"clip name {record.clip} repeated for {record.subject}: stored as "
                                f"{record.clip}_{seen[key]}")
            record.clip = f"{record.clip}_{seen[key]}"
        records.append(record)
    return records, excluded, {"macro_expressions": macro, "annotation": workbook.name}


def read_records(manual_dir, variant: str = "rawpic", *, skip_bad_samples: bool = False
                 ) -> tuple[list[ClipRecord], list[dict]]:
    """CAS(ME)^2's micro-expression clip records with quirks fixed, and its exclusions."""
    records, excluded, _ = read_annotations(manual_dir, variant, skip_bad_samples=skip_bad_samples)
    return records, excluded


def _record(row: dict, where: str, subjects: dict, videos: dict, rawpic: Path) -> ClipRecord:
    subject_id = parse_int(row["subject_id"], corpus=DATASET, where=where, field="subject id")
    if subject_id not in subjects:
        raise ArchiveError(f"{DATASET}: {where}: subject id {subject_id} is not in sheet {RULE1_SHEET!r} "
                           f"(ids {sorted(subjects)})")
    subject, number = subjects[subject_id]
    clip = row["clip"].strip()
    prefix = clip.split("_")[0].lower()
    if prefix not in videos:
        raise ArchiveError(f"{DATASET}: {where}: clip {clip!r}: its video {prefix!r} is not in sheet "
                           f"{RULE2_SHEET!r} ({sorted(videos)})")
    emotion = normalise_emotion(row["emotion"], EMOTIONS, corpus=DATASET, where=f"{where} (emotion category)")
    onset = parse_int(row["onset"], corpus=DATASET, where=where, field="onset")
    apex = parse_int(row["apex"], corpus=DATASET, where=where, field="apex")
    offset = parse_int(row["offset"], corpus=DATASET, where=where, field="offset")
    fixes = []
    if offset == 0:
        if apex == 0:
            raise ArchiveError(f"{DATASET}: {where}: clip {clip!r} has neither an offset nor an apex (both 0)")
        offset = apex
        fixes.append(QUIRKS["offset_zero"] + f" = {apex}")
    apex_value = apex
    if apex == 0:
        apex_value = None  # the base class sets the midpoint and records it
        fixes.append(QUIRKS["apex_zero"])
    folder, found_in = _video_folder(rawpic, subject, number, videos[prefix], where)
    if found_in != subject:
        fixes.append(f"{QUIRKS['misplaced_video']}: {found_in}/{folder.name}")
    return ClipRecord(subject=subject, clip=clip, emotion=emotion, folder=folder, where=where, onset=onset,
                      apex=apex_value, offset=offset, aus=au_vector(row["aus"]), fps=FPS, fixes=fixes)


def _video_folder(rawpic: Path, subject: str, number: int, code: str, where: str) -> tuple[Path, str]:
    """The long video's frame folder `<nn>_<code>*` in the subject's folder, else (once) in another's."""
    prefix = f"{number}_{code}"

    def matches(folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(prefix))

    own = matches(rawpic / subject)
    if len(own) > 1:
        raise ArchiveError(f"{DATASET}: {where}: several long-video folders {[p.name for p in own]} in "
                           f"{rawpic / subject} start with {prefix}")
    if own:
        return own[0], subject
    elsewhere = [p for s in sorted(rawpic.iterdir()) if s.is_dir() and s.name != subject for p in matches(s)]
    if len(elsewhere) == 1:
        return elsewhere[0], elsewhere[0].parent.name
    raise ArchiveError(f"{DATASET}: {where}: no long-video folder {rawpic / subject / (prefix + '*')} "
                       f"(expected e.g. {prefix}<stimulus name>/img001.jpg)")


class Builder(FrameCorpusBuilder):
    """CAS(ME)^2 micro-expressions cut from its long videos, one split per subject."""

    DATASET = DATASET
    FPS = FPS
    LABEL_SCHEMES = ("megc3", "casme_sq_4")
    HAS_AUS = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: micro-expressions of rawpic, aligned (default) or as shipped."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        CorpusConfig(name="default", variant="rawpic", align=True, image_size=224,
                     description="rawpic frames onset..offset, face aligned and cropped to 224 x 224."),
        CorpusConfig(name="unaligned", variant="rawpic",
                     description="rawpic frames onset..offset as shipped (full 640 x 480 frames, JPEG)."),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def read_records(self, manual_dir: Path) -> tuple[list[ClipRecord], list[dict]]:
        config = self.builder_config
        records, excluded, summary = read_annotations(manual_dir, config.variant,
                                                      skip_bad_samples=config.skip_bad_samples)
        self.info.metadata.update(summary)   # macro-expression rows: another task, counted here
        return records, excluded
