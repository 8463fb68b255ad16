"""TFDS builder of SAMM (Davison et al. 2018), read from the user's licensed copy; one split per subject.

manual_dir layout (reference/corpora.md section 2), as the providers ship it:
- frames: `SAMM/006/006_1_2/006_05562.jpg`, i.e. `<subject, 3 digits>/<Filename>/<subject>_<frame>.jpg`,
  greyscale JPEG, 200 fps, uncropped faces (960 x 650). The frame number is the trailing integer of
  the file stem; its zero padding is 4 or 5 digits (`009_3577.jpg` next to `006_05562.jpg`), so
  frames are ordered numerically, never by string. A clip folder holds its onset..offset frames.
  The `SAMM/` folder may also be manual_dir itself.
- annotation: `SAMM_Micro_FACS_Codes_v2.xlsx` (13 preamble rows, header on Excel row 14) or
  `SAMM_20181215_Micro_FACS_Codes_v2.xlsx` (header on row 1), anywhere under manual_dir. The header row
  is found by its content: `Subject | Filename | Inducement Code | Onset Frame | Apex Frame |
  Offset Frame | Duration | Micro | Action Units | Estimated Emotion | Objective Classes | Notes`.

Subject ids: the `Subject` cell (`6` or `006`) becomes `006` (3 digits); stored subjects are `samm/006`,
clips `samm/006/006_1_2`. Emotions (`Anger, Contempt, Disgust, Fear, Happiness, Sadness, Surprise,
Other`, also `Others`) become taxonomy names (`Other`/`Others` -> `others`); any other label is an
error naming the file and row. AUs (`R12 + R15`, `R14A`, `4+7`) become the AU multi-hot vector.
Objective classes (1-7) have no schema field: they are kept in the dataset metadata
(`info.metadata["objective_class"]`, clip id -> class).

Known annotation errors are fixed by `QUIRKS` below (one table, each entry citing its source); a fix
is applied only when the row's own content shows the error, and every applied fix is recorded in
`info.metadata["fixes"]` and logged.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.data import archive
from mer_jax.data.archive import ArchiveError
from tfds_builders.corpus_builder import (ClipRecord, CorpusConfig, FrameCorpusBuilder, log_fixes, records_from_rows,
                                          unread_clip_id)

CORPUS = "samm"
FPS = 200.0
# Annotation file names, most specific first (searched recursively under manual_dir).
ANNOTATION_FILES = ("SAMM_Micro_FACS_Codes_v2.xlsx", "SAMM_20181215_Micro_FACS_Codes_v2.xlsx",
                    "*Micro_FACS_Codes*.xlsx", "*Micro_FACS_Codes*.xls")
# Folder holding the subject folders: the first of these under manual_dir, else manual_dir itself.
FRAME_ROOTS = ("SAMM", "samm")
COLUMNS = ("Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Action Units",
           "Estimated Emotion")
OBJECTIVE_COLUMN = "Objective Classes"
# The corpus's emotion strings (lower-cased) -> taxonomy names.
EMOTIONS = {"anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear",
            "happiness": "happiness", "sadness": "sadness", "surprise": "surprise",
            "other": "others", "others": "others"}   # meb maps `Others` as well as `Other`
# The archive has one folder set (the shipped frames); every builder config reads it, so config names
# are accepted as variants too (the MEGC2019 composite passes the config it wants).
VARIANTS = ("", "default", "unaligned")


@dataclasses.dataclass(frozen=True)
class Quirk:
    """A known error in one annotation cell and its correction.

    The quirk is identified by `row` (0-based index of the data row below the header, i.e. meb's
    DataFrame index for this file; blank rows are not counted) or by `clip` (the Filename), and it is
    applied only when that row's content shows the error (see `_applies`):
    - `offset`: the annotated offset is not an integer or is not the last frame in the clip folder
      (SAMM folders hold onset..offset, as meb's validate_onset_offset checks); the correction is used
      only if it is that last frame.
    - `apex`: the apex cell is blank, not an integer, or outside onset..offset; the correction is used
      only if it lies inside onset..offset. `value=None` means the midpoint (onset + offset) // 2.
    - `aus`: the Action Units cell lists alternatives (`12 or 14`).
    """
    field: str                   # "offset" | "apex" | "aus"
    value: int | str | None      # corrected cell; None (apex): (onset + offset) // 2
    source: str                  # where the fix comes from
    row: int | None = None
    clip: str | None = None


# Every known SAMM annotation quirk. Handled without an entry here: the 13 preamble rows before the
# header in SAMM_Micro_FACS_Codes_v2.xlsx vs the header on row 1 of the 20181215 variant (read_table
# finds the header by content; merlib `header=13`, meb `df.loc[12]`); subject `6` vs `006` (zfill(3),
# corpora.md section 0); 4- vs 5-digit frame padding (archive.frame_number); `Other` vs `Others`
# (EMOTIONS); an `or` AU cell with no entry here: every alternative AU is set and the fix recorded.
QUIRKS: tuple[Quirk, ...] = (
    # meb datasets.py, SAMM.data_frame: `df.loc[56, "offset"] = 5739` ("Mistake in file").
    Quirk("offset", 5739, "meb: offset typo, corrected to 5739", row=56),
    # meb: `df.loc[[125, 132, 133], "apex"] = [1105, 4945, 5130]` ("Missing apex in file, change based
    # on optical flow"); corpora.md section 2: three rows with a missing or invalid apex.
    Quirk("apex", 1105, "meb: missing/invalid apex, optical-flow estimate 1105", row=125),
    Quirk("apex", 4945, "meb: missing/invalid apex, optical-flow estimate 4945", row=132),
    Quirk("apex", 5130, "meb: missing/invalid apex, optical-flow estimate 5130", row=133),
    # merlib clean_doc.py (SAMM): apex outside [onset, offset] for these two clips -> the midpoint.
    Quirk("apex", None, "merlib: apex outside onset..offset, set to (onset + offset) // 2", clip="028_4_1"),
    Quirk("apex", None, "merlib: apex outside onset..offset, set to (onset + offset) // 2", clip="032_3_1"),
    # meb: `df.loc[[15, 18, 41, 64, 154], "AU"] = [...]` ("Samples that have 'or' in the AU. Change
    # them based on optical flow").
    Quirk("aus", "R12 + R15", "meb: 'or' in the AU cell resolved by optical flow", row=15),
    Quirk("aus", "R12 + R15", "meb: 'or' in the AU cell resolved by optical flow", row=18),
    Quirk("aus", "L14", "meb: 'or' in the AU cell resolved by optical flow", row=41),
    Quirk("aus", "R14", "meb: 'or' in the AU cell resolved by optical flow", row=64),
    Quirk("aus", "R14A", "meb: 'or' in the AU cell resolved by optical flow", row=154),
)

_MISSING = ("", "/", "-")
_ALTERNATIVES = re.compile(r"\bor\b", re.IGNORECASE)


def subject_id(text: str, *, where: str) -> str:
    """`6`, `006`, `6.0` -> `006`."""
    return f"{archive.subject_digits(text, corpus=CORPUS, where=where):03d}"


def frames_root(manual_dir: Path) -> Path:
    """The folder holding the subject folders (`manual_dir/SAMM`, or manual_dir itself)."""
    return archive.first_dir(manual_dir, FRAME_ROOTS) or Path(manual_dir)


def read_records(manual_dir: Path, variant: str = "", *,
                 skip_bad_samples: bool = False) -> tuple[list[ClipRecord], list[dict]]:
    """SAMM's clip records (quirks fixed) and exclusions ({'clip', 'where', 'reason'}).

    A row that cannot be read (unknown emotion, non-integer onset, duplicate clip) is an error naming
    the file and row, or with `skip_bad_samples` an exclusion. Frames are checked by the builder.
    """
    records, excluded, _ = _read(manual_dir, variant, skip_bad_samples=skip_bad_samples)
    return records, excluded


def _read(manual_dir: Path, variant: str, *, skip_bad_samples: bool):
    if variant not in VARIANTS:
        raise ArchiveError(f"{CORPUS}: unknown variant {variant!r}; expected one of {list(VARIANTS)}")
    manual_dir = Path(manual_dir)
    path = archive.find_file(manual_dir, ANNOTATION_FILES, corpus=CORPUS, what="SAMM annotation file")
    table = archive.read_table(path, COLUMNS, corpus=CORPUS)
    root = frames_root(manual_dir)
    objective, seen = {}, {}

    def to_record(i: int, row: dict, where: str) -> ClipRecord:
        record = _record(i, row, where, root)
        key = (record.subject, record.clip)
        if key in seen:
            raise ArchiveError(f"{CORPUS}: {where}: clip {record.clip} of subject {record.subject} is "
                               f"also annotated on {seen[key]}; expected one row per clip")
        seen[key] = where
        cell = row.get(OBJECTIVE_COLUMN, "")
        objective[f"{CORPUS}/{record.subject}/{record.clip}"] = int(cell) if cell.isdigit() else cell
        return record

    records, excluded = records_from_rows(table, to_record, _exclusion_clip, skip_bad_samples=skip_bad_samples)
    return records, excluded, objective


def _exclusion_clip(row: dict, where: str) -> str:
    return unread_clip_id(CORPUS, row.get("Subject", ""), row.get("Filename", "") or "?",
                          subject_id=subject_id, where=where)


def _quirks(i: int, clip: str) -> dict[str, list[Quirk]]:
    """The table's entries for data row i or this clip, by field; row entries (meb) first."""
    found: dict[str, list[Quirk]] = {}
    for q in sorted(QUIRKS, key=lambda q: q.row is None):
        if q.row == i or q.clip == clip:
            found.setdefault(q.field, []).append(q)
    return found


def _record(i: int, row: dict, where: str, root: Path) -> ClipRecord:
    subject = subject_id(row["Subject"], where=where)
    clip = row["Filename"]
    if not clip:
        raise ArchiveError(f"{CORPUS}: {where}: Filename is empty; expected a clip name such as 006_1_2")
    emotion = archive.normalise_emotion(row["Estimated Emotion"], EMOTIONS, corpus=CORPUS, where=where)
    folder = root / subject / clip
    quirks = _quirks(i, clip)
    fixes: list[str] = []
    onset = archive.parse_int(row["Onset Frame"], corpus=CORPUS, where=where, field="Onset Frame")

    offset_text = row["Offset Frame"]
    offset = archive.int_or_none(offset_text)
    if quirks.get("offset") and folder.is_dir():
        last = list(archive.list_frames(folder, corpus=CORPUS, where=where))[-1]
        for quirk in quirks["offset"]:
            if offset != last and quirk.value == last:
                fixes.append(f"Offset Frame {offset_text!r} -> {quirk.value} ({quirk.source}; {where})")
                offset = quirk.value
    if offset is None:
        offset = archive.parse_int(offset_text, corpus=CORPUS, where=where, field="Offset Frame")

    apex_text = row["Apex Frame"]
    apex = archive.int_or_none(apex_text)
    for quirk in quirks.get("apex", ()):
        if apex is not None and onset <= apex <= offset:
            break
        value = (onset + offset) // 2 if quirk.value is None else quirk.value
        if onset <= value <= offset:
            fixes.append(f"Apex Frame {apex_text!r} -> {value} ({quirk.source}; {where})")
            apex = value
    if apex is None and apex_text not in _MISSING:
        fixes.append(f"Apex Frame {apex_text!r} is not a frame number: treated as missing ({where})")

    aus_text = row["Action Units"]
    quirk = (quirks.get("aus") or [None])[0]
    if quirk is not None and _ALTERNATIVES.search(aus_text):
        fixes.append(f"Action Units {aus_text!r} -> {quirk.value!r} ({quirk.source}; {where})")
        aus_text = quirk.value
    elif _ALTERNATIVES.search(aus_text):
        fixes.append(f"Action Units {aus_text!r} lists alternatives: every AU named is set ({where})")
    return ClipRecord(subject=subject, clip=clip, emotion=emotion, folder=folder, where=where,
                      onset=onset, apex=apex, offset=offset, aus=archive.au_vector(aus_text), fixes=fixes)


class Builder(FrameCorpusBuilder):
    """SAMM micro-expressions (159 clips, 32 subjects, 200 fps); see README.md."""

    DATASET = CORPUS
    FPS = FPS
    LABEL_SCHEMES = ("megc3", "samm_5", "samm_8")
    HAS_AUS = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        CorpusConfig(name="default", align=True, image_size=224,
                     description="The shipped uncropped 960x650 grey frames, face aligned on the onset "
                                 "frame and cropped to 224x224 (one transform per clip)."),
        CorpusConfig(name="unaligned",
                     description="Frames as shipped (uncropped grey JPEG, stored unchanged)."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
SAMM is licensed: request it from its providers (Manchester Metropolitan University, Davison et al.,
"SAMM: A Spontaneous Micro-Facial Movement Dataset", IEEE TAC 2018), then unpack the archive into
manual_dir as shipped, so that manual_dir holds
  SAMM/006/006_1_2/006_05562.jpg ...        (one folder per subject, one per clip, grey JPEG frames)
  SAMM_Micro_FACS_Codes_v2.xlsx             (or SAMM_20181215_Micro_FACS_Codes_v2.xlsx; any folder)
(manual_dir may also be the SAMM folder itself.) Pass it as
`--config.dataset.manual_dir=<dir>` or `tfds build ... --manual_dir=<dir>`.
"""

    def read_records(self, manual_dir: Path) -> tuple[list[ClipRecord], list[dict]]:
        records, excluded, objective = _read(manual_dir, self.builder_config.variant,
                                             skip_bad_samples=self.builder_config.skip_bad_samples)
        self.info.metadata["objective_class"] = objective
        log_fixes(CORPUS, records)
        return records, excluded
