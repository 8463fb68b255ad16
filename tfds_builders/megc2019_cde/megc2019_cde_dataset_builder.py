"""TFDS builder of the MEGC2019 composite (CDE): SMIC-HS + CASME II + SAMM in 3 classes.

Membership and classes come from the official ground truth `combined_3class_gt.csv`
(Facial-Micro-ExpressionGC/MEGC2019; 442 rows, no header, CRLF: `database,subject,filename,class`,
class 0 negative / 1 positive / 2 surprise), shipped with this builder; a `combined_3class_gt.csv` in
manual_dir replaces it. Membership is not derived from the corpora's own labels, which do not give
the official 145 CASME II samples (reference/corpora.md section 8).

Each part is read by its own builder's reader (`tfds_builders/<corpus>`), with that corpus's quirk
table, from `manual_dir/<corpus>/` laid out as that builder expects. Subject ids stay unique across
datasets (`casme2/sub01`, `smic/s1`, `samm/006`); the ground truth writes them differently (`s01`,
`6`), so rows are matched on (database, subject number, clip name with numbers unpadded).
"""
from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.data import taxonomy
from mer_jax.data.archive import ArchiveError, read_headerless, subject_digits
from tfds_builders.corpus_builder import ClipRecord, CorpusConfig, FrameCorpusBuilder

GROUND_TRUTH = "combined_3class_gt.csv"
DATABASES = ("smic", "casme2", "samm")


def _key(database: str, subject: str, clip: str, where: str) -> tuple[str, int, str]:
    """(database, subject number, clip with every number unpadded): `s01_ne_01` ~ `s1_ne_01`."""
    number = subject_digits(subject, corpus="megc2019_cde", where=where)
    name = re.sub(r"\d+", lambda m: str(int(m.group())), Path(clip).name.lower())
    return database, number, name


def read_ground_truth(path: Path) -> list[dict]:
    """Rows of the ground-truth file, checked: known database, class in {0, 1, 2}, no duplicates."""
    table = read_headerless(path, ("database", "subject", "filename", "class"), corpus="megc2019_cde")
    seen = {}
    for i, row in enumerate(table.rows):
        where = table.where(i)
        if row["database"] not in DATABASES:
            raise ArchiveError(f"megc2019_cde: {where}: database {row['database']!r}, expected one of {DATABASES}")
        if row["class"] not in ("0", "1", "2"):
            raise ArchiveError(f"megc2019_cde: {where}: class {row['class']!r}, expected 0, 1 or 2")
        key = _key(row["database"], row["subject"], row["filename"], where)
        if key in seen:
            raise ArchiveError(f"megc2019_cde: {where} repeats {seen[key]}")
        seen[key] = where
        row["where"] = where
    return table.rows


@dataclasses.dataclass(eq=False)
class Megc2019CdeConfig(CorpusConfig):
    """`parts`: per database, the variant of its builder to read and whether to align its faces."""
    parts: dict = dataclasses.field(default_factory=dict)


class Builder(FrameCorpusBuilder):
    """MEGC2019 composite database evaluation (CDE) set: 442 samples, 68 subjects, 3 classes."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    DATASET = "megc2019_cde"
    FPS = 0.0  # every sample keeps its source corpus's frame rate
    LABEL_SCHEMES = ("megc3",)
    HAS_AUS = True  # CASME II and SAMM samples; SMIC has none (zeros)
    BUILDER_CONFIGS = [
        Megc2019CdeConfig(
            name="cropped", parts={"casme2": ("cropped", False), "smic": ("hs", False), "samm": ("unaligned", True)},
            image_size=0, description="CASME II `Cropped`, SMIC-HS `SMIC_all_cropped` as shipped; SAMM (shipped "
                                      "uncropped) aligned and cropped to 224 x 224."),
        Megc2019CdeConfig(
            name="aligned", parts={"casme2": ("raw_selected", True), "smic": ("hs_raw", True),
                                   "samm": ("unaligned", True)},
            image_size=224, description="Raw frames of all three, aligned and cropped to 224 x 224."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put your licensed copies of the three corpora in manual_dir, each laid out as its own mer_jax builder
    expects (see tfds_builders/<corpus>/README.md):
      manual_dir/casme2/   CASME II (CASME2-coding-*.xlsx, Cropped/ or CASME2_RAW_selected/)
      manual_dir/smic/     SMIC (SMIC_all_cropped/HS/... or SMIC_all_raw/HS/...)
      manual_dir/samm/     SAMM (SAMM_Micro_FACS_Codes_v2.xlsx, SAMM/)
    The official ground truth combined_3class_gt.csv ships with mer_jax; put another copy in manual_dir
    to use it instead.
    """

    def read_records(self, manual_dir: Path):
        gt_path = manual_dir / GROUND_TRUTH
        if not gt_path.exists():
            gt_path = Path(__file__).with_name(GROUND_TRUTH)
        ground_truth = read_ground_truth(gt_path)
        by_key, reasons = {}, {}
        for database, (variant, align) in self.builder_config.parts.items():
            part_dir = manual_dir / database
            if not part_dir.is_dir():
                raise ArchiveError(f"megc2019_cde: no folder {part_dir} for the {database} part; expected "
                                   f"manual_dir/{database}/ laid out as the `{database}` builder expects")
            reader = importlib.import_module(f"tfds_builders.{database}.{database}_dataset_builder").read_records
            records, excluded = reader(part_dir, variant)
            for record in records:
                record.align, record.dataset = align, database
                by_key[_key(database, record.subject, record.clip, record.where)] = record
            for item in excluded:
                reasons[_key(database, *_subject_and_clip(item["clip"]), item["where"])] = item
        records, excluded, members = [], [], set()
        for row in ground_truth:
            key = _key(row["database"], row["subject"], row["filename"], row["where"])
            members.add(key)
            record = by_key.get(key)
            if record is None:
                if key in reasons:  # the part's own quirk table excludes it (e.g. a folder absent from the archive)
                    item = reasons[key]
                    excluded.append({"clip": item["clip"], "where": f"{row['where']} ({item['where']})",
                                     "reason": item["reason"]})
                    continue
                raise ArchiveError(f"megc2019_cde: {row['where']} lists {row['database']} subject {row['subject']} "
                                   f"clip {row['filename']}, which the {row['database']} annotations do not have")
            label = int(row["class"])
            own = taxonomy.megc3_label(record.emotion) if record.label_3class is None else record.label_3class
            if own != label:
                record.fixes.append(f"{record.dataset} labels it {record.emotion!r}; the ground truth "
                                    f"({row['where']}) gives class {taxonomy.MEGC3_CLASSES[label]}, which is used")
            record.label_3class = label
            records.append(record)
        # Clips of the three corpora that are not composite members: not samples of this dataset.
        self.info.metadata["not_in_ground_truth"] = sorted(
            f"{r.dataset}/{r.subject}/{r.clip}" for k, r in by_key.items() if k not in members)
        return records, excluded


def _subject_and_clip(clip_id: str) -> tuple[str, str]:
    """(subject, clip) of an exclusion's clip id `dataset/subject/clip` (or `subject/clip`)."""
    parts = clip_id.split("/")
    if len(parts) < 2:
        raise ValueError(f"exclusion clip id {clip_id!r} must end in subject/clip")
    return parts[-2], parts[-1]
