"""TFDS builder of precomputed flow images as researchers share them, one split per subject.

Many MER papers release their network inputs instead of the code that made them: one image per sample
whose three channels are the onset -> apex optical flow u, v and the optical strain, min-max
normalised to 0..255 (the 28 x 28 images of STSTNet and HTNet, e.g. HTNet's
`datasets/STSNet_whole_norm_u_v_os/`), plus a label CSV for the MEGC2019 composite (SMIC-HS,
CASME II, SAMM). This builder stores them in the shared schema with `frames` replaced by `flow`
(`mer_jax.data.schema.flow_features`).

manual_dir layout (the discovery rule):
- the label CSV is the only `*.csv` file directly inside manual_dir;
- the flow images are the `*.png` files directly inside manual_dir or, when it has none, inside the
  only folder below it (at any depth) that holds PNG files;
- the image of a CSV row is `<sub>_<filename> .png` (with a space before `.png`, as HTNet ships them)
  or `<sub>_<filename>.png`, where `<sub>` is the subject id in its canonical form (below) or as the
  CSV writes it, and `<filename>` the CSV's clip name.

Label CSV formats, told apart by content (reference/corpora.md section 8):
- HTNet `combined_3_class2_for_optical_flow.csv`: header `dataset,sub,filename_o,label,...`; an
  optional `apex` column gives the apex frame number (blank in HTNet's file); other columns
  (`imagename`, `sub_filename`) are ignored;
- MEGC2019 ground truth `combined_3class_gt.csv`: no header, `database,subject,filename,class`, CRLF
  line endings (a header row with these names is accepted too). Blank rows (`,,,`) are skipped.

Subject ids take one canonical form per dataset, the form of HTNet's CSV, STSTNet's
`video442subName.txt` and STSTNet's released per-fold weights: CASME II `sub01`, SMIC `s01`, SAMM
`006`. The GT's `6` (SAMM), `s1` or `1` (SMIC) and `01` or `1` (CASME II) map to them by integer.
Stored subjects are `dataset/<canonical id>` (`casme2/sub01`, `smic/s01`, `samm/006`).

Stored per sample: the image's pixels unchanged (decoded and re-encoded as PNG; an 8-bit 3-channel
image is required), emotion `negative` / `positive` / `surprise` and label_3class 0 / 1 / 2 from the
CSV's class, onset and offset -1 and apex the CSV's apex frame number or -1 (frame numbers of the
original recording, not indices: a flow corpus has no frames), aus all zeros (these CSVs carry no
AUs), fps of the source corpus (SMIC-HS 100, CASME II and SAMM 200).

Errors name the CSV line: a row whose image is missing (with the expected path), an unknown label,
dataset or subject form, a duplicate clip. An image that no CSV row names is not an error: it is
listed under `excluded` in the dataset metadata (`info.metadata`) and logged.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import tensorflow_datasets as tfds

from mer_jax.data import schema, taxonomy

log = logging.getLogger(__name__)

# Datasets of the MEGC2019 composite: (prefix of the canonical subject id, digits, fps).
DATASETS = {"casme2": ("sub", 2, 200.0), "smic": ("s", 2, 100.0), "samm": ("", 3, 200.0)}
# MEGC2019 3-class codes (challenge PDF; the GT csv): 0 negative, 1 positive, 2 surprise.
CLASSES = dict(enumerate(taxonomy.MEGC3_CLASSES))
HTNET_COLUMNS = ("dataset", "sub", "filename_o", "label")
GT_COLUMNS = ("database", "subject", "filename", "class")


@dataclasses.dataclass(frozen=True)
class LabelRow:
    """One sample of the label CSV."""
    line: int            # 1-based line number in the CSV
    cells: tuple         # the row as read, for messages
    dataset: str
    subject: str         # canonical id (`sub01`, `s01`, `006`)
    raw_subject: str     # as the CSV writes it
    filename: str
    label: int
    apex: int            # apex frame number, -1 when the CSV has none

    @property
    def subject_id(self) -> str:
        return f"{self.dataset}/{self.subject}"

    @property
    def clip(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.filename}"


def canonical_subject(dataset: str, subject: str) -> str | None:
    """Canonical id of `subject` in `dataset` (`sub01`, `s01`, `006`), or None if it has no known form."""
    prefix, digits, _ = DATASETS[dataset]
    accepted = {"casme2": r"(?:sub)?", "smic": r"s?", "samm": r""}[dataset]
    match = re.fullmatch(accepted + r"0*(\d+)", subject.strip(), flags=re.IGNORECASE)
    if match is None or int(match.group(1)) == 0:
        return None
    return f"{prefix}{int(match.group(1)):0{digits}d}"


def read_label_csv(path: Path) -> tuple[str, list[LabelRow]]:
    """(format, rows) of an HTNet or MEGC2019-GT label CSV; format is `htnet` or `megc2019_gt`."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = []
        reader = csv.reader(f)
        for cells in reader:
            cells = tuple(c.strip() for c in cells)
            if any(cells):
                lines.append((reader.line_num, cells))
    if not lines:
        raise ValueError(f"label CSV {path} holds no rows")
    first_line, first = lines[0]
    lower = [c.lower() for c in first]
    if set(HTNET_COLUMNS) <= set(lower):
        fmt, columns, body = "htnet", {name: lower.index(name) for name in lower if name}, lines[1:]
        keys = {"dataset": "dataset", "subject": "sub", "filename": "filename_o", "label": "label", "apex": "apex"}
    elif tuple(lower[:4]) == GT_COLUMNS:
        fmt, columns, body = "megc2019_gt", {name: i for i, name in enumerate(GT_COLUMNS)}, lines[1:]
        keys = {"dataset": "database", "subject": "subject", "filename": "filename", "label": "class"}
    elif len(first) >= 4 and re.fullmatch(r"-?\d+", first[3]):
        fmt, columns, body = "megc2019_gt", {name: i for i, name in enumerate(GT_COLUMNS)}, lines
        keys = {"dataset": "database", "subject": "subject", "filename": "filename", "label": "class"}
    else:
        raise ValueError(
            f"{path.name} line {first_line}: cannot tell the label CSV's format from its first row {list(first)}; "
            f"expected the HTNet header ({','.join(HTNET_COLUMNS)},...) or headerless MEGC2019 ground-truth "
            f"rows ({','.join(GT_COLUMNS)}, e.g. casme2,sub01,EP02_01f,1)")
    rows = [_parse_row(path, line, cells, columns, keys) for line, cells in body]
    seen = {}
    for row in rows:
        if row.clip in seen:
            raise ValueError(f"{path.name} lines {seen[row.clip]} and {row.line}: clip {row.clip} appears twice")
        seen[row.clip] = row.line
    return fmt, rows


def _parse_row(path: Path, line: int, cells: tuple, columns: dict, keys: dict) -> LabelRow:
    where = f"{path.name} line {line} ({','.join(cells)})"

    def cell(key: str) -> str:
        name = keys.get(key)
        if name not in columns:
            return ""
        index = columns[name]
        if index >= len(cells) and key != "apex":
            raise ValueError(f"{where}: has {len(cells)} cells, no {name!r} column")
        return cells[index] if index < len(cells) else ""

    dataset = cell("dataset").lower()
    if dataset not in DATASETS:
        raise ValueError(f"{where}: unknown dataset {cell('dataset')!r}; expected one of {sorted(DATASETS)}")
    raw_subject = cell("subject")
    subject = canonical_subject(dataset, raw_subject)
    if subject is None:
        forms = {"casme2": "sub01, 01 or 1", "smic": "s01, s1 or 1", "samm": "006 or 6"}[dataset]
        raise ValueError(f"{where}: subject {raw_subject!r} is not a {dataset} subject id (expected e.g. {forms})")
    filename = cell("filename")
    if not filename:
        raise ValueError(f"{where}: empty {keys['filename']!r}")
    label_text = cell("label")
    if not re.fullmatch(r"\d+", label_text) or int(label_text) not in CLASSES:
        raise ValueError(f"{where}: unknown label {label_text!r}; expected "
                         + ", ".join(f"{k} ({v})" for k, v in CLASSES.items()))
    apex_text = cell("apex")
    if apex_text and not re.fullmatch(r"\d+(\.0*)?", apex_text):
        raise ValueError(f"{where}: apex {apex_text!r} is not a frame number")
    return LabelRow(line=line, cells=cells, dataset=dataset, subject=subject, raw_subject=raw_subject,
                    filename=filename, label=int(label_text), apex=int(float(apex_text)) if apex_text else -1)


def find_inputs(manual_dir: Path) -> tuple[Path, Path, dict[str, Path]]:
    """(label CSV, image folder, {image stem: path}) by the discovery rule of the module docstring."""
    manual_dir = Path(manual_dir)
    csvs = sorted(p for p in manual_dir.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if len(csvs) != 1:
        raise ValueError(f"{manual_dir} must hold exactly one label CSV (*.csv) at its top level, found "
                         f"{[p.name for p in csvs] or 'none'}")
    is_png = lambda p: p.is_file() and p.suffix.lower() == ".png"
    if any(is_png(p) for p in manual_dir.iterdir()):
        image_dir = manual_dir
    else:
        folders = sorted({p.parent for p in manual_dir.rglob("*") if is_png(p)})
        if len(folders) != 1:
            listed = [str(f.relative_to(manual_dir)) for f in folders[:10]]
            raise ValueError(f"{manual_dir} must hold the flow images (*.png) directly or in exactly one folder "
                             f"below it; found {len(folders)} folders with PNG files: {listed or 'none'}"
                             + (" ..." if len(folders) > 10 else ""))
        image_dir = folders[0]
    images = {p.name[:-len(p.suffix)]: p for p in sorted(image_dir.iterdir()) if is_png(p)}
    return csvs[0], image_dir, images


def match_images(csv_path: Path, image_dir: Path, images: dict[str, Path],
                 rows: list[LabelRow]) -> tuple[dict[str, Path], list[dict]]:
    """({clip: image path}, exclusions): every row's image, and the images no row names."""
    found, used = {}, set()
    for row in rows:
        stems = [f"{sub}_{row.filename}{space}" for sub in dict.fromkeys([row.subject, row.raw_subject])
                 for space in (" ", "")]
        hits = [s for s in stems if s in images]
        if not hits:
            raise ValueError(f"{csv_path.name} line {row.line} ({','.join(row.cells)}): no flow image for clip "
                             f"{row.clip}; expected {image_dir / (stems[0] + '.png')!s} (or the name without "
                             f"the space before .png)")
        if len(hits) > 1:
            raise ValueError(f"{csv_path.name} line {row.line}: clip {row.clip} matches several images "
                             f"{[images[s].name for s in hits]} in {image_dir}; keep one")
        found[row.clip] = images[hits[0]]
        used.add(hits[0])
    exclusions = [{"file": images[s].name, "reason": f"no row of {csv_path.name} names this image"}
                  for s in images if s not in used]
    return found, exclusions


def read_flow_png(path: Path, where: str) -> bytes:
    """The image at `path` re-encoded as PNG, pixels unchanged; it must be 8-bit with 3 channels."""
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{where}: cannot decode the image {path}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise ValueError(f"{where}: {path} has {channels} channel(s) of {image.dtype}; expected an 8-bit "
                         "3-channel image (u, v, strain)")
    ok, encoded = cv2.imencode(".png", image)  # BGR in, so the PNG keeps the file's RGB order
    if not ok:
        raise ValueError(f"{where}: cannot PNG-encode {path}")
    return encoded.tobytes()


class Builder(tfds.core.GeneratorBasedBuilder):
    """Shared flow images (u, v, strain) and their MEGC2019 labels (see README.md)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put into manual_dir exactly one label CSV and the flow images:
      manual_dir/
        combined_3_class2_for_optical_flow.csv   (HTNet: header dataset,sub,filename_o,label,...)
          or combined_3class_gt.csv              (MEGC2019 GT: database,subject,filename,class, no header)
        STSNet_whole_norm_u_v_os/                (or the PNGs directly in manual_dir)
          sub01_EP02_01f .png  s01_s01_ne_01 .png  006_006_1_2 .png  ...
    One PNG per CSV row, named <sub>_<filename> .png (the space before .png may be absent), whose
    three channels are u, v and optical strain (e.g. the 28 x 28 images released with STSTNet and
    HTNet: HTNet's datasets/STSNet_whole_norm_u_v_os/ and combined_3_class2_for_optical_flow.csv).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(features=schema.flow_features(),
                                              metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager):
        csv_path, image_dir, images = find_inputs(Path(dl_manager.manual_dir))
        fmt, rows = read_label_csv(csv_path)
        paths, exclusions = match_images(csv_path, image_dir, images, rows)
        if exclusions:
            log.warning("precomputed_flow: %d image(s) in %s have no row in %s and are excluded: %s%s",
                        len(exclusions), image_dir, csv_path.name, [e["file"] for e in exclusions[:5]],
                        " ..." if len(exclusions) > 5 else "")
        self.info.metadata.update({
            "label_csv": csv_path.name, "csv_format": fmt,
            "image_dir": str(image_dir.relative_to(Path(dl_manager.manual_dir))),
            "num_rows": len(rows), "excluded": exclusions,
            "label_schemes": ["megc3"], "has_aus": False,
        })
        by_subject = collections.defaultdict(list)
        for row in rows:
            by_subject[row.subject_id].append(row)
        return {schema.subject_split_name(subject): self._generate_examples(csv_path, subject_rows, paths)
                for subject, subject_rows in sorted(by_subject.items())}

    def _generate_examples(self, csv_path: Path, rows: list[LabelRow], paths: dict[str, Path]):
        for row in rows:
            yield row.clip, {
                "flow": read_flow_png(paths[row.clip], f"{csv_path.name} line {row.line}"),
                "onset": -1, "apex": row.apex, "offset": -1,
                "subject": row.subject_id, "dataset": row.dataset, "clip": row.clip,
                "emotion": CLASSES[row.label], "label_3class": row.label,
                "aus": np.zeros(len(taxonomy.AU_VOCAB), np.uint8),
                "fps": DATASETS[row.dataset][2],
            }
