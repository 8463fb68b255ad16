"""What every builder of a licensed frame corpus shares: from clip records to examples and splits.

A corpus builder (e.g. `casme2`) only reads its archive: it turns the annotation file and folder
layout into `ClipRecord`s, applying its quirk table. This base class then, for every record,
- lists the clip folder and orders frames by the trailing number of the file name;
- checks onset <= apex <= offset against the frames on disk and takes onset..offset;
- fills frames that the corpus's quirk table says are missing with the previous frame (recorded);
- reads every frame (an unreadable image is an error naming it), aligns and crops faces for raw
  variants (mer_jax.data.face_align; the onset frame's transform is used for the whole clip);
- writes the shared schema (mer_jax.data.schema), one split per subject.
Nothing is silently dropped: samples a corpus excludes, and bad samples skipped when the config says
`skip_bad_samples`, are listed with their reason in the dataset metadata (`info.metadata`) and the log.
Without alignment or resizing the original JPEG/PNG bytes are stored unchanged; other formats (BMP)
are stored as PNG.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow_datasets as tfds

from mer_jax.data import schema, taxonomy
from mer_jax.data.archive import ArchiveError, list_frames

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ClipRecord:
    """One annotated clip as a corpus reader found it. Frame numbers are file numbers, not indices."""
    subject: str                  # normalised subject id within its corpus, e.g. `sub01`, `006`, `s1`
    clip: str                     # clip id within the subject, e.g. `EP02_01f`
    emotion: str                  # name from taxonomy.EMOTIONS
    folder: Path                  # folder holding the clip's frames
    where: str                    # annotation file and row, for messages
    onset: int | None = None      # None: the first frame on disk
    apex: int | None = None       # None: (onset + offset) // 2, recorded as a fix
    offset: int | None = None     # None: the last frame on disk
    aus: list[int] | None = None  # multi-hot over taxonomy.AU_VOCAB; None: the corpus has no AUs
    label_3class: int | None = None   # None: taxonomy.megc3_label(emotion); composites take it from the GT
    dataset: str | None = None    # None: the builder's corpus; composites keep the source corpus
    fps: float | None = None      # None: the builder's FPS
    align: bool | None = None     # None: the config's `align`; composites align only their raw parts
    fill_missing: bool = False    # the quirk table says frames are missing: fill with the previous frame
    fixes: list[str] = dataclasses.field(default_factory=list)   # quirk fixes applied to this record


@dataclasses.dataclass(eq=False)
class CorpusConfig(tfds.core.BuilderConfig):
    """Which part of the archive to read and how to store it.

    variant: the corpus's folder set (e.g. CASME II `raw_selected`, `cropped`).
    align: detect the face and eyes on the onset frame and warp every frame to an aligned square crop
        of `image_size` (raw variants).
    image_size: side of stored frames; 0 keeps the archive's frames as they are.
    detector: face detector for `align` (`opencv` cascades, `mtcnn` when installed, `auto`).
    skip_bad_samples: a sample with missing frames, an unreadable image or no detectable face is listed
        as an exclusion instead of stopping the build.
    """
    variant: str = ""
    align: bool = False
    image_size: int = 0
    detector: str = "opencv"
    skip_bad_samples: bool = False


def disambiguate(records: list[ClipRecord]) -> None:
    """Rows naming the same subject and clip folder (two MEs in one clip) get distinct clip ids
    `<clip>_<onset>-<offset>`, recorded; the folder stays the same."""
    seen: dict[tuple[str, str], list[ClipRecord]] = {}
    for record in records:
        seen.setdefault((record.subject, record.clip), []).append(record)
    for (_, clip), same in seen.items():
        if len(same) > 1:
            for record in same:
                record.clip = f"{clip}_{record.onset}-{record.offset}"
                record.fixes.append(f"clip {clip} is annotated {len(same)} times: id {record.clip}")


def unread_clip_id(corpus: str, subject: str, clip: str, *, subject_id: Callable[..., str], where: str) -> str:
    """`corpus/subject/clip` of an annotation row that could not be read, for its exclusion: the subject
    cell normalised by `subject_id(cell, where=...)` where it can be, else as written (`?` if blank)."""
    try:
        subject = subject_id(subject, where=where)
    except ArchiveError:
        subject = subject or "?"
    return f"{corpus}/{subject}/{clip}"


def records_from_rows(table, to_record: Callable, exclusion_clip: Callable, *,
                      skip_bad_samples: bool) -> tuple[list[ClipRecord], list[dict]]:
    """One record per annotation row, `to_record(i, row, where)`. A row it cannot read (ArchiveError)
    stops the build, or with `skip_bad_samples` becomes an exclusion
    {'clip': exclusion_clip(row, where), 'where', 'reason'}."""
    records, excluded = [], []
    for i, row in enumerate(table.rows):
        where = table.where(i)
        try:
            records.append(to_record(i, row, where))
        except ArchiveError as error:
            if not skip_bad_samples:
                raise
            excluded.append({"clip": exclusion_clip(row, where), "where": where, "reason": str(error)})
    return records, excluded


def log_fixes(corpus: str, records: list[ClipRecord]) -> None:
    """Log every quirk fix a reader applied, one line each."""
    for record in records:
        for fix in record.fixes:
            log.info("%s: fixed %s/%s/%s (%s): %s", corpus, corpus, record.subject, record.clip, record.where, fix)


@dataclasses.dataclass
class _Plan:
    record: ClipRecord
    paths: list[Path]          # onset..offset, missing ones filled
    onset: int                 # 0-based indices into `paths`
    apex: int
    offset: int


class FrameCorpusBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of every licensed frame-corpus builder; subclasses implement `read_records`."""

    DATASET: str = ""                       # corpus name in subject ids, e.g. `casme2`
    FPS: float = 0.0
    LABEL_SCHEMES: tuple[str, ...] = ("megc3",)   # taxonomy.LABEL_SCHEMES this corpus offers
    HAS_AUS: bool = True

    def read_records(self, manual_dir: Path) -> tuple[list[ClipRecord], list[dict]]:
        """The corpus's clip records and its exclusions ({'clip', 'where', 'reason'}), quirks fixed.
        A reader may add entries of its own to `self.info.metadata` (e.g. rows that are not samples)."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_records (FrameCorpusBuilder subclass)")

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(features=schema.features(), metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager):
        manual_dir = Path(dl_manager.manual_dir)  # TFDS prints MANUAL_DOWNLOAD_INSTRUCTIONS if missing
        records, excluded = self.read_records(manual_dir)
        excluded = list(excluded)
        plans, fixes = [], []
        for record in records:
            try:
                plan = self._plan(record)
            except ArchiveError as error:
                self._skip_or_raise(error, record, excluded)
                continue
            plans.append(plan)
            fixes += [{"clip": self._clip_id(record), "fix": fix} for fix in record.fixes]
        if self.builder_config.skip_bad_samples:
            # Read (and align) every clip now, so a subject whose clips all fail has no split at all
            # instead of an empty one; this mode reads the frames twice.
            plans = [plan for plan in plans if self._readable(plan, excluded)]
        for item in excluded:
            log.warning("%s: excluded %s (%s): %s", self.name, item["clip"], item["where"], item["reason"])
        if not plans:
            raise ArchiveError(f"{self.name}: no usable samples in {manual_dir}")
        self.info.metadata.update({
            "dataset": self.DATASET, "variant": self.builder_config.variant,
            "label_schemes": list(self.LABEL_SCHEMES), "has_aus": self.HAS_AUS,
            "excluded": excluded, "fixes": fixes, "alignment": {}})
        by_subject: dict[str, list[_Plan]] = {}
        for plan in plans:
            by_subject.setdefault(self._subject_id(plan.record), []).append(plan)
        return {schema.subject_split_name(subject): self._generate_examples(subject_plans)
                for subject, subject_plans in sorted(by_subject.items())}

    def _readable(self, plan: _Plan, excluded: list) -> bool:
        try:
            self._encode(plan)
        except ArchiveError as error:
            self._skip_or_raise(error, plan.record, excluded)
            return False
        return True

    def _skip_or_raise(self, error: Exception, record: ClipRecord, excluded: list) -> None:
        if not self.builder_config.skip_bad_samples:
            raise error
        excluded.append({"clip": self._clip_id(record), "where": record.where, "reason": str(error)})

    def _subject_id(self, record: ClipRecord) -> str:
        return f"{record.dataset or self.DATASET}/{record.subject}"

    def _clip_id(self, record: ClipRecord) -> str:
        return f"{self._subject_id(record)}/{record.clip}"

    def _plan(self, record: ClipRecord) -> _Plan:
        """The clip's onset..offset frame files and key-frame indices, validated against the disk."""
        where = f"{record.where} (clip {record.clip})"
        frames = list_frames(record.folder, corpus=self.name, where=where)
        numbers = list(frames)
        onset = numbers[0] if record.onset is None else record.onset
        offset = numbers[-1] if record.offset is None else record.offset
        apex = record.apex
        if apex is None:
            apex = (onset + offset) // 2
            record.fixes.append(f"{schema.MISSING_APEX_FIX}: apex = (onset + offset) // 2 = {apex}")
        if not onset <= apex <= offset:
            raise ArchiveError(f"{self.name}: {where}: onset {onset}, apex {apex}, offset {offset} are "
                               f"not in order (expected onset <= apex <= offset)")
        missing = [n for n in range(onset, offset + 1) if n not in frames]
        if missing and (not record.fill_missing or onset not in frames):
            raise ArchiveError(
                f"{self.name}: {where}: frames {_ranges(missing)} of onset..offset {onset}..{offset} are "
                f"missing from {record.folder} (it holds frames {_ranges(numbers)})")
        paths, last = [], None
        for n in range(onset, offset + 1):
            last = frames.get(n, last)
            paths.append(last)
        if missing:
            record.fixes.append(f"frames {_ranges(missing)} missing on disk: filled with the previous frame")
        return _Plan(record, paths, 0, apex - onset, offset - onset)

    def _generate_examples(self, plans: list[_Plan]):
        for plan in plans:
            record = plan.record
            frames, alignment = self._encode(plan)  # in skip mode every plan left has been read once
            if alignment is not None:
                self._record_alignment(plan, alignment)
            emotion = record.emotion
            label = taxonomy.megc3_label(emotion) if record.label_3class is None else record.label_3class
            yield self._clip_id(record), {
                "frames": frames, "onset": plan.onset, "apex": plan.apex, "offset": plan.offset,
                "subject": self._subject_id(record), "dataset": record.dataset or self.DATASET,
                "clip": self._clip_id(record), "emotion": emotion, "label_3class": label,
                "aus": record.aus if record.aus is not None else [0] * len(taxonomy.AU_VOCAB),
                "fps": record.fps or self.FPS,
            }

    def _record_alignment(self, plan: _Plan, alignment) -> None:
        """Count the alignment rule used; a face-box fallback is listed among the fixes."""
        counts = self.info.metadata["alignment"]
        counts[alignment.method] = counts.get(alignment.method, 0) + 1
        if alignment.method != "eyes":
            self.info.metadata["fixes"].append({"clip": self._clip_id(plan.record),
                                                "fix": f"aligned by the face box: {alignment.note}"})

    def _encode(self, plan: _Plan) -> tuple[list[bytes], object]:
        """Stored bytes of every frame (the file's own bytes, or PNG after alignment / resizing / BMP)
        and the face alignment used (None without alignment)."""
        import cv2

        config = self.builder_config
        align = config.align if plan.record.align is None else plan.record.align
        transform = align or config.image_size > 0
        if not transform and all(p.suffix.lower() in (".jpg", ".jpeg", ".png") for p in plan.paths):
            return [_checked_bytes(p, self.name) for p in plan.paths], None
        images = [_read_image(p, self.name) for p in plan.paths]
        if align:
            from mer_jax.data import face_align

            align_config = face_align.AlignConfig(output_size=config.image_size or 224, detector=config.detector)
            try:  # detectors expect RGB; the warp is the same for any channel order
                onset_rgb = cv2.cvtColor(images[0], cv2.COLOR_BGR2RGB)
                alignment = face_align.estimate_alignment(onset_rgb, align_config)
            except face_align.FaceNotFoundError as error:
                raise ArchiveError(f"{self.name}: {plan.record.where} (clip {plan.record.clip}): no face "
                                   f"found on the onset frame {plan.paths[0]}: {error}") from None
            images = face_align.apply_alignment(images, alignment, align_config.output_size)
            return [_png(i) for i in images], alignment
        if config.image_size > 0:
            size = (config.image_size, config.image_size)
            images = [cv2.resize(i, size, interpolation=cv2.INTER_AREA) for i in images]
        return [_png(i) for i in images], None


def _read_image(path: Path, corpus: str) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # BGR; grey files become 3 equal channels
    if image is None:
        raise ArchiveError(f"{corpus}: cannot read image {path} (missing, empty or not an image)")
    return image


def _checked_bytes(path: Path, corpus: str) -> bytes:
    """The file's bytes after checking they decode as an image."""
    import cv2

    data = path.read_bytes()
    if not data or cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
        raise ArchiveError(f"{corpus}: cannot read image {path} (empty, truncated or not an image)")
    return data


def _png(image_bgr: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", image_bgr)
    if not ok:
        raise ArchiveError(f"cannot PNG-encode an image of shape {image_bgr.shape}")
    return encoded.tobytes()


def _ranges(numbers: list[int]) -> str:
    """`[1, 2, 3, 7]` -> `1-3, 7`."""
    out, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            out.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out)
