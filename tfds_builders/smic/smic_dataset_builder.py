"""TFDS builder of SMIC (HS / VIS / NIR), read from the user's licensed copy (see README.md).

SMIC ships no annotation sheet: a clip's label is the name of its emotion folder and a clip is every
frame in its folder (reference/corpora.md section 3):

    SMIC_all_cropped/HS/s1/micro/negative/s1_ne_01/reg_image012345.bmp     (configs hs, vis, nir)
    SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image012345.bmp             (configs *_raw: aligned)

There is no onset/apex/offset annotation, so onset and offset are the first and last frame on disk and
the apex is the midpoint (onset + offset) // 2, the rule of merlib (`clean_doc.py`) and meb (SMIC
loader); the base class records the midpoint as a fix of every clip. Frame numbers are the absolute
frame indices of the recording (zero-padded to 6 digits); frames are ordered by that number.
Subjects are stored unpadded as on disk (`s1`, split `subject_smic_s1`); the MEGC2019 ground truth's
`s01` / `s01_ne_01` are the same subject and clip (the composite maps them by integer).
`non_micro/` folders next to `micro/` (non-micro-expression clips, present in some copies) are not
samples of this corpus and are ignored.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import tensorflow_datasets as tfds

from mer_jax.data.archive import ArchiveError, frame_numbers, normalise_emotion
from tfds_builders.corpus_builder import ClipRecord, CorpusConfig, FrameCorpusBuilder

log = logging.getLogger(__name__)

DATASET = "smic"

# Config variant -> (folder sets under manual_dir, modality folder, fps). HS is the 100 fps high-speed
# camera; VIS and NIR are the 25 fps normal-speed visual and near-infrared cameras (Oulu SMIC page).
_FOLDER_SETS = {"cropped": ("SMIC_all_cropped",), "raw": ("SMIC_all_raw", "SMIC")}
MODALITIES = {"hs": ("HS", 100.0), "vis": ("VIS", 25.0), "nir": ("NIR", 25.0)}
VARIANTS = ("hs", "vis", "nir", "hs_raw", "vis_raw", "nir_raw")

# Emotion folder -> taxonomy name (SMIC's three classes are MEGC2019's three classes).
EMOTIONS = {"negative": "negative", "positive": "positive", "surprise": "surprise"}
# Emotion code inside a clip folder name `s{subject}_{code}_{kk}`.
CLIP_CODES = {"ne": "negative", "po": "positive", "sur": "surprise"}
_CLIP_NAME = re.compile(r"^s(\d+)_([a-z]+)_(\d+)$", re.IGNORECASE)

# Every known quirk of the SMIC archive, keyed by (modality folder, clip folder). Sources: merlib
# (`merlib/data/clean_doc.py`, LuYi8/EDMDBN; reference/corpora.md section 3 "Missing data in
# SMIC_all_cropped") and meb (`meb/datasets/datasets.py`, frame j-1 fallback). They were reported for
# SMIC_all_cropped; the same rules apply to SMIC_all_raw when its folders show the same gaps.
# - "absent": the clip folder does not exist although the MEGC2019 ground truth lists the clip. It is
#   listed as an exclusion (with this reason) when the copy has the subject but not the clip folder, not
#   an error; a copy that has the folder gets the clip as a normal sample.
# - "missing_frames": up to this many frames between the first and last frame on disk are missing;
#   each is filled with the previous frame (meb's j-1 fallback) and recorded as a fix. Applied only
#   when the folder's gaps are at most this many frames; a larger gap is an error like in any other clip.
QUIRKS: dict[tuple[str, str], dict] = {
    # merlib drops s18_sur_03: folder absent from SMIC_all_cropped/HS (in the MEGC2019 GT all the same).
    ("HS", "s18_sur_03"): {"absent": True, "source": "merlib clean_doc.py"},
    # merlib: s3_po_08 lacks 2 frames; meb fills a missing frame j with frame j-1.
    ("HS", "s3_po_08"): {"missing_frames": 2, "source": "merlib; fill as meb (frame j-1)"},
    # merlib: s3_sur_01, s3_sur_05 and s3_ne_16 lack 1 frame each; meb's j-1 fill.
    ("HS", "s3_sur_01"): {"missing_frames": 1, "source": "merlib; fill as meb (frame j-1)"},
    ("HS", "s3_sur_05"): {"missing_frames": 1, "source": "merlib; fill as meb (frame j-1)"},
    ("HS", "s3_ne_16"): {"missing_frames": 1, "source": "merlib; fill as meb (frame j-1)"},
}

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
SMIC is licensed by the University of Oulu (CMVS); request it at https://www.oulu.fi/cmvs/node/41319 .
Unpack it so that manual_dir holds the cropped frames (configs hs, vis, nir)
    <manual_dir>/SMIC_all_cropped/HS/s1/micro/negative/s1_ne_01/reg_image000001.bmp
    <manual_dir>/SMIC_all_cropped/VIS/...   <manual_dir>/SMIC_all_cropped/NIR/...
and/or the original frames (configs hs_raw, vis_raw, nir_raw; faces are aligned and cropped)
    <manual_dir>/SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image000001.bmp
Then run e.g. `tfds build tfds_builders/smic --config=hs --manual_dir=<manual_dir>`.
"""


def parse_variant(variant: str) -> tuple[str, str, float]:
    """`hs` / `vis_raw` ... -> (folder set `cropped` | `raw`, modality folder `HS`, fps)."""
    if variant not in VARIANTS:
        raise ArchiveError(f"{DATASET}: unknown variant {variant!r}; expected one of {VARIANTS}")
    modality, _, raw = variant.partition("_")
    name, fps = MODALITIES[modality]
    return ("raw" if raw else "cropped"), name, fps


def modality_root(manual_dir: Path, variant: str) -> Path:
    """The `<folder set>/<modality>` folder of a variant, e.g. `SMIC_all_cropped/HS`."""
    manual_dir = Path(manual_dir)
    folder_set, modality, _ = parse_variant(variant)
    names = _FOLDER_SETS[folder_set]
    candidates = [manual_dir / n / modality for n in names]
    if manual_dir.name in names:  # manual_dir is the folder set itself
        candidates.append(manual_dir / modality)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ArchiveError(f"{DATASET}: no {modality} frames for variant {variant!r} in {manual_dir}; expected "
                       f"one of the folders {[str(c.relative_to(manual_dir)) for c in candidates[:len(names)]]}"
                       f" holding s<n>/micro/<emotion>/<clip>/ folders")


def _subject_number(folder: Path) -> int | None:
    match = re.fullmatch(r"s(\d+)", folder.name, re.IGNORECASE)
    return int(match.group(1)) if match else None


def read_records(manual_dir, variant: str = "hs", *, skip_bad_samples: bool = False
                 ) -> tuple[list[ClipRecord], list[dict]]:
    """SMIC's clips of `variant` (see `VARIANTS`) with their quirks fixed, and its exclusions.

    Reader-level problems (an unknown emotion folder, a clip folder whose name does not match its
    subject and emotion folders) raise ArchiveError naming the folder, or with `skip_bad_samples` are
    listed as exclusions. Exclusions are dicts {'clip', 'where', 'reason'}.
    """
    manual_dir = Path(manual_dir)
    _, modality, fps = parse_variant(variant)
    root = modality_root(manual_dir, variant)
    records: list[ClipRecord] = []
    excluded: list[dict] = []
    seen: set[str] = set()

    def bad(clip_id: str, where: str, reason: str) -> None:
        if not skip_bad_samples:
            raise ArchiveError(f"{DATASET}: {where}: {reason}")
        excluded.append({"clip": clip_id, "where": where, "reason": reason})

    subjects = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: (_subject_number(p) or 0, p.name))
    for subject_dir in subjects:
        number = _subject_number(subject_dir)
        if number is None:
            log.warning("%s: ignoring %s (not a subject folder s<n>)", DATASET, subject_dir)
            continue
        subject = f"s{number}"
        micro = subject_dir / "micro"
        if not micro.is_dir():  # subjects without micro-expressions (only non_micro/, or nothing)
            log.info("%s: %s has no micro/ folder: no samples", DATASET, subject_dir)
            continue
        for emotion_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
            where_emotion = str(emotion_dir.relative_to(manual_dir))
            try:
                emotion = normalise_emotion(emotion_dir.name, EMOTIONS, corpus=DATASET,
                                            where=f"emotion folder {where_emotion}")
            except ArchiveError as error:
                if not skip_bad_samples:
                    raise
                excluded.append({"clip": f"{DATASET}/{subject}/{emotion_dir.name}/*", "where": where_emotion,
                                 "reason": str(error)})
                continue
            for clip_dir in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                where = str(clip_dir.relative_to(manual_dir))
                clip = clip_dir.name
                clip_id = f"{DATASET}/{subject}/{clip}"
                match = _CLIP_NAME.match(clip)
                if match is None:
                    bad(clip_id, where, f"clip folder name {clip!r} does not look like "
                                        f"s{number}_<ne|po|sur>_<kk>")
                    continue
                code = match.group(2).lower()
                if int(match.group(1)) != number or CLIP_CODES.get(code) != emotion:
                    bad(clip_id, where, f"clip folder {clip!r} does not match its folders: expected "
                                        f"s{number}_{_code_of(emotion)}_<kk> under {subject}/micro/{emotion_dir.name}")
                    continue
                record = ClipRecord(subject=subject, clip=clip, emotion=emotion, folder=clip_dir, where=where,
                                    aus=None, fps=fps)
                _apply_missing_frames(record, modality, manual_dir)
                records.append(record)
                seen.add(clip.lower())
    for (quirk_modality, clip), quirk in QUIRKS.items():
        subject, code, _ = clip.split("_")
        if (quirk_modality == modality and quirk.get("absent") and clip.lower() not in seen
                and (root / subject / "micro").is_dir()):   # the subject is in this copy, the clip is not
            where = str((root / subject / "micro" / CLIP_CODES[code] / clip).relative_to(manual_dir))
            excluded.append({
                "clip": f"{DATASET}/{subject}/{clip}", "where": where,
                "reason": f"known quirk ({quirk['source']}): clip folder absent from the archive although the "
                          f"MEGC2019 ground truth lists the clip"})
    return records, excluded


def _code_of(emotion: str) -> str:
    return next(code for code, name in CLIP_CODES.items() if name == emotion)


def _apply_missing_frames(record: ClipRecord, modality: str, manual_dir: Path) -> None:
    """Quirk table `missing_frames`: allow filling when the folder's gaps are within the known count."""
    quirk = QUIRKS.get((modality, record.clip))
    if not quirk or "missing_frames" not in quirk:
        return
    numbers = frame_numbers(record.folder, corpus=DATASET)
    if numbers is None:
        return  # the base class reports the empty folder
    gaps = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if 0 < len(gaps) <= quirk["missing_frames"]:
        record.fill_missing = True
        record.fixes.append(f"known quirk ({quirk['source']}): {len(gaps)} frame(s) missing on disk, at most "
                            f"{quirk['missing_frames']} expected")


class Builder(FrameCorpusBuilder):
    """SMIC-HS / VIS / NIR micro-expression clips, labels from folder names, one split per subject."""

    DATASET = DATASET
    FPS = 100.0   # HS; VIS and NIR records carry their own 25 fps
    LABEL_SCHEMES = ("megc3",)   # SMIC's own classes negative / positive / surprise are MEGC2019's
    HAS_AUS = False
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: HS, VIS, NIR; cropped and raw (aligned) frames."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        CorpusConfig(name="hs", variant="hs",
                     description="SMIC-HS (100 fps), SMIC_all_cropped frames as shipped."),
        CorpusConfig(name="vis", variant="vis",
                     description="SMIC-VIS (25 fps), SMIC_all_cropped frames as shipped."),
        CorpusConfig(name="nir", variant="nir",
                     description="SMIC-NIR (25 fps), SMIC_all_cropped frames as shipped."),
        CorpusConfig(name="hs_raw", variant="hs_raw", align=True, image_size=224,
                     description="SMIC-HS original frames (SMIC_all_raw), faces aligned and cropped to 224."),
        CorpusConfig(name="vis_raw", variant="vis_raw", align=True, image_size=224,
                     description="SMIC-VIS original frames (SMIC_all_raw), faces aligned and cropped to 224."),
        CorpusConfig(name="nir_raw", variant="nir_raw", align=True, image_size=224,
                     description="SMIC-NIR original frames (SMIC_all_raw), faces aligned and cropped to 224."),
    ]
    DEFAULT_CONFIG_NAME = "hs"

    def read_records(self, manual_dir: Path) -> tuple[list[ClipRecord], list[dict]]:
        config = self.builder_config
        return read_records(manual_dir, config.variant, skip_bad_samples=config.skip_bad_samples)
