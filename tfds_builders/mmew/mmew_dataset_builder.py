"""TFDS builder of MMEW's micro-expressions (Ben et al. 2022), read from the user's licensed copy; one
split per subject.

manual_dir layout (reference/corpora.md section 7), as the providers ship it:
- frames: `MMEW/Micro_Expression/<emotion>/<Filename>/<n>.jpg` (the layout of meb, merlib and HTNet),
  or subject folder first, `MMEW/Micro_Expression/S03/<emotion>/<Filename>/<n>.jpg` (the official
  page's layout). Frames are numbered from 1 (`OnsetFrame` is 1), JPEG, 90 fps, faces pre-cropped
  (about 231 x 231). The `others` clips may sit in a folder named `repression` (meb renames others ->
  repression; the official page lists a `repression` folder): both names are looked up. Emotion folder
  names are matched case-insensitively. `Micro_Expression/` may also be manual_dir itself; the
  `Macro_Expression/` part of MMEW is not read.
- annotation: `MMEW_Micro_Exp.xlsx` (or `MMEW_Micro_Exp_v2.xlsx`) anywhere under manual_dir, header found
  by content: `Subject | Filename | OnsetFrame | ApexFrame | OffsetFrame | Action Units |
  Estimated Emotion | remarks`, e.g. `1 | S01-01-001 | 1 | 15 | 31 | 6+12 | happiness`.

Subject ids: the `Subject` cell (`1`, `01` or `S01`) becomes `S01`, the form of the Filename prefix and
of the official page's subject folders; stored subjects are `mmew/S01`, clips `mmew/S01/S01-01-001`.
Emotions (`happiness, surprise, disgust, fear, sadness, anger, others`) are taxonomy names; any other
label is an error naming the file and row. AUs (`6+12`) become the AU multi-hot vector.

Known annotation errors are fixed by `QUIRKS` below (one table, each entry citing its source); a fix
is applied only when the row's own content shows the error, and every applied fix is recorded in
`info.metadata["fixes"]` and logged.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.data import archive
from mer_jax.data.archive import ArchiveError
from tfds_builders.corpus_builder import (ClipRecord, CorpusConfig, FrameCorpusBuilder, log_fixes, records_from_rows,
                                          unread_clip_id)

CORPUS = "mmew"
FPS = 90.0
ANNOTATION_FILES = ("MMEW_Micro_Exp.xlsx", "MMEW_Micro_Exp_v2.xlsx", "MMEW_Micro_Exp*.xlsx",
                    "MMEW_Micro_Exp*.xls")
# Folder holding the emotion (or subject) folders: the first of these under manual_dir, else manual_dir.
FRAME_ROOTS = ("MMEW/Micro_Expression", "Micro_Expression", "MMEW/Micro_expression", "Micro_expression")
COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
           "Estimated Emotion")
EMOTIONS = {e: e for e in ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "others")}
# The archive has one folder set (the shipped frames); every builder config reads it, so config names
# are accepted as variants too.
VARIANTS = ("", "default", "resized_224")


@dataclasses.dataclass(frozen=True)
class Fix:
    """meb's corrected apex and offset of one data row (0-based index below the header, i.e. meb's
    DataFrame index; blank rows are not counted).

    Applied only when the row's content shows an error against the frames on disk (`_shows_error`):
    the apex cell is blank or not an integer or lies outside onset..offset, or the offset is not an
    integer or is not the last frame in the clip folder (MMEW folders hold onset..offset, as meb's
    validate_onset_offset checks). The corrected offset must then be the last frame on disk.
    """
    row: int
    apex: int
    offset: int


# Every known MMEW annotation quirk.
# - Folder of the `others` clips: `others` or `repression` (meb `df.replace({"others": "repression"})`
#   before building paths; the official page lists a `repression` folder). OTHERS_FOLDERS below; a clip
#   found under `repression` is recorded as a fix.
# - Two folder layouts, emotion first (meb, merlib, HTNet) or subject first (official page): both read.
# - meb datasets.py, MMEW.data_frame: "Incorrect apex and offset, change them", 16 rows:
#   `df.loc[samples_missing_apex, ["apex", "offset"]] = [estimated_apexes, estimated_offsets]`.
OTHERS_FOLDERS = ("others", "repression")
QUIRKS: tuple[Fix, ...] = tuple(Fix(row, apex, offset) for row, apex, offset in zip(
    (33, 35, 36, 37, 38, 39, 40, 41, 42, 142, 143, 145, 146, 148, 154, 156),
    (40, 15, 46, 20, 25, 20, 23, 28, 32, 56, 32, 27, 22, 29, 31, 38),
    (75, 54, 59, 98, 80, 93, 58, 61, 68, 88, 80, 85, 61, 108, 72, 106)))
_MISSING = ("", "/", "-")


def subject_id(text: str, *, where: str) -> str:
    """`1`, `01`, `S01` -> `S01`."""
    return f"S{archive.subject_digits(text, corpus=CORPUS, where=where):02d}"


def frames_root(manual_dir: Path) -> Path:
    """The folder holding the emotion (or subject) folders."""
    return archive.first_dir(manual_dir, FRAME_ROOTS) or Path(manual_dir)


def read_records(manual_dir: Path, variant: str = "", *,
                 skip_bad_samples: bool = False) -> tuple[list[ClipRecord], list[dict]]:
    """MMEW's clip records (quirks fixed) and exclusions ({'clip', 'where', 'reason'}).

    A row that cannot be read (unknown emotion, non-integer onset, duplicate clip) is an error naming
    the file and row, or with `skip_bad_samples` an exclusion. Frames are checked by the builder.
    """
    if variant not in VARIANTS:
        raise ArchiveError(f"{CORPUS}: unknown variant {variant!r}; expected one of {list(VARIANTS)}")
    manual_dir = Path(manual_dir)
    path = archive.find_file(manual_dir, ANNOTATION_FILES, corpus=CORPUS, what="MMEW annotation file")
    table = archive.read_table(path, COLUMNS, corpus=CORPUS)
    folders = _Folders(frames_root(manual_dir))
    fixes_by_row = {fix.row: fix for fix in QUIRKS}
    seen = {}

    def to_record(i: int, row: dict, where: str) -> ClipRecord:
        record = _record(row, where, folders, fixes_by_row.get(i))
        if record.clip in seen:
            raise ArchiveError(f"{CORPUS}: {where}: clip {record.clip} is also annotated on "
                               f"{seen[record.clip]}; expected one row per clip")
        seen[record.clip] = where
        return record

    records, excluded = records_from_rows(table, to_record, _exclusion_clip, skip_bad_samples=skip_bad_samples)
    return records, excluded


def _exclusion_clip(row: dict, where: str) -> str:
    return unread_clip_id(CORPUS, row.get("Subject", ""), row.get("Filename", "") or "?",
                          subject_id=subject_id, where=where)


class _Folders:
    """Finds a clip's folder in either layout, with the emotion folder's name matched case-insensitively."""

    def __init__(self, root: Path):
        self.root = root
        self._children: dict[Path, dict[str, Path]] = {}

    def _child(self, parent: Path, name: str) -> Path | None:
        if parent not in self._children:
            self._children[parent] = ({p.name.lower(): p for p in parent.iterdir() if p.is_dir()}
                                      if parent.is_dir() else {})
        return self._children[parent].get(name.lower())

    def find(self, subject: str, emotion: str, clip: str) -> tuple[Path, str | None]:
        """The clip folder (or, when missing, where it was expected) and the emotion folder name used."""
        names = OTHERS_FOLDERS if emotion == "others" else (emotion,)
        subject_dir = self._child(self.root, subject)
        for parent in (self.root, subject_dir):
            if parent is None:
                continue
            for name in names:
                emotion_dir = self._child(parent, name)
                if emotion_dir is not None and (emotion_dir / clip).is_dir():
                    return emotion_dir / clip, emotion_dir.name
        subject_first = subject_dir is not None and self._child(self.root, names[0]) is None
        return (subject_dir if subject_first else self.root) / names[0] / clip, None


def _record(row: dict, where: str, folders: _Folders, fix: Fix | None) -> ClipRecord:
    subject = subject_id(row["Subject"], where=where)
    clip = row["Filename"]
    if not clip:
        raise ArchiveError(f"{CORPUS}: {where}: Filename is empty; expected a clip name such as S01-01-001")
    emotion = archive.normalise_emotion(row["Estimated Emotion"], EMOTIONS, corpus=CORPUS, where=where)
    folder, emotion_folder = folders.find(subject, emotion, clip)
    fixes: list[str] = []
    if emotion_folder is not None and emotion_folder.lower() != emotion:
        fixes.append(f"{emotion} clip found in the folder {emotion_folder!r} (MMEW others/repression folder)")
    onset = archive.parse_int(row["OnsetFrame"], corpus=CORPUS, where=where, field="OnsetFrame")
    apex_text, offset_text = row["ApexFrame"], row["OffsetFrame"]
    apex, offset = archive.int_or_none(apex_text), archive.int_or_none(offset_text)
    if fix is not None and folder.is_dir():
        last = list(archive.list_frames(folder, corpus=CORPUS, where=where))[-1]
        shows_error = (apex is None or offset is None or offset != last
                       or not onset <= apex <= offset)
        if shows_error and fix.offset == last and onset <= fix.apex <= fix.offset:
            fixes.append(f"ApexFrame {apex_text!r}, OffsetFrame {offset_text!r} -> {fix.apex}, {fix.offset} "
                         f"(meb: incorrect apex and offset; {where})")
            apex, offset = fix.apex, fix.offset
    if offset is None:
        offset = archive.parse_int(offset_text, corpus=CORPUS, where=where, field="OffsetFrame")
    if apex is None and apex_text not in _MISSING:
        fixes.append(f"ApexFrame {apex_text!r} is not a frame number: treated as missing ({where})")
    return ClipRecord(subject=subject, clip=clip, emotion=emotion, folder=folder, where=where, onset=onset,
                      apex=apex, offset=offset, aus=archive.au_vector(row["Action Units"]), fixes=fixes)


class Builder(FrameCorpusBuilder):
    """MMEW micro-expressions (300 clips, 30 subjects, 90 fps); see README.md."""

    DATASET = CORPUS
    FPS = FPS
    LABEL_SCHEMES = ("megc3", "mmew_4", "mmew_6", "mmew_7")
    HAS_AUS = True
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        CorpusConfig(name="default", description="Frames as shipped (pre-cropped faces, JPEG stored unchanged)."),
        CorpusConfig(name="resized_224", image_size=224,
                     description="The shipped pre-cropped frames resized to 224 x 224 (PNG)."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
MMEW is licensed: request it from its providers (Ben et al., "Video-based Facial Micro-Expression
Analysis: A Survey of Datasets, Features and Algorithms", IEEE TPAMI 2022; dpailab.com/database.html),
then unpack the archive into manual_dir as shipped, so that manual_dir holds
  MMEW/Micro_Expression/happiness/S01-01-001/1.jpg ...   (or MMEW/Micro_Expression/S01/happiness/...)
  MMEW/MMEW_Micro_Exp.xlsx                               (or MMEW_Micro_Exp_v2.xlsx; any folder)
(manual_dir may also be the Micro_Expression folder itself, with the xlsx inside it.) Pass it as
`--config.dataset.manual_dir=<dir>` or `tfds build ... --manual_dir=<dir>`.
"""

    def read_records(self, manual_dir: Path) -> tuple[list[ClipRecord], list[dict]]:
        records, excluded = read_records(manual_dir, self.builder_config.variant,
                                         skip_bad_samples=self.builder_config.skip_bad_samples)
        log_fixes(CORPUS, records)
        return records, excluded
