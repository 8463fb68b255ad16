"""Reading a licensed corpus as its providers ship it: annotation tables, subject ids, frame folders.

Shared by the corpus builders in `tfds_builders/` (reference/corpora.md section 0, "Rules for every
builder"): the header row is found by its content, never assumed; subject ids are normalised; frames
are ordered by the trailing integer of their file name; every error names the corpus, the file and
the row. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from mer_jax.data import taxonomy

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class ArchiveError(ValueError):
    """Bad or unexpected content in a user's copy of a corpus; the message names corpus, file and row."""


@dataclasses.dataclass
class Table:
    """An annotation sheet: rows as dicts keyed by the header's strings, with their spreadsheet rows."""
    path: Path
    sheet: str | None
    header: tuple[str, ...]
    rows: list[dict]
    row_numbers: list[int]   # 1-based spreadsheet (or CSV line) number of each row

    def where(self, i: int) -> str:
        """`file[, sheet] row n`, for error messages."""
        sheet = f", sheet {self.sheet!r}" if self.sheet else ""
        return f"{self.path.name}{sheet} row {self.row_numbers[i]}"


def _cell_text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _read_raw(path: Path, sheet) -> tuple[list[list], str | None]:
    """All cells of a sheet (or CSV) as lists of Python values, header included; and the sheet name."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False)
        return frame.values.tolist(), None
    if suffix not in (".xlsx", ".xls"):
        raise ArchiveError(f"{path}: expected an .xlsx, .xls or .csv annotation file")
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None)
    except ImportError as error:  # pandas reads .xls with xlrd or python-calamine, neither a dependency
        raise ArchiveError(f"{path}: reading it needs an extra package ({error}); `pip install xlrd` "
                           f"(or python-calamine) for .xls, or save the file as .xlsx") from error
    names = list(sheets)
    name = names[0] if sheet is None else sheet
    if name not in sheets:
        raise ArchiveError(f"{path}: has no sheet {name!r}; sheets are {names}")
    return sheets[name].values.tolist(), str(name)


def read_table(path, required: tuple[str, ...], *, corpus: str, sheet=None, max_preamble: int = 30) -> Table:
    """The first sheet (or `sheet`) of an xlsx/xls/csv file, its header found as the first of the first
    `max_preamble` rows holding every `required` column name (case and spacing ignored).

    Blank header cells become `column_<k>`; blank rows are skipped, each kept row remembers its
    spreadsheet row number.
    """
    path = Path(path)
    cells, sheet_name = _read_raw(path, sheet)
    wanted = {_norm(r) for r in required}
    for h, row in enumerate(cells[:max_preamble]):
        names = [_cell_text(v) for v in row]
        if wanted <= {_norm(n) for n in names if n}:
            break
    else:
        raise ArchiveError(f"{corpus}: no header row with the columns {list(required)} in the first "
                           f"{max_preamble} rows of {path}")
    header = tuple(n if n else f"column_{k}" for k, n in enumerate(names))
    by_norm = {_norm(n): n for n in header}
    rows, numbers = [], []
    for r, row in enumerate(cells[h + 1:], start=h + 2):
        values = [_cell_text(v) for v in row]
        if not any(values):
            continue
        record = dict(zip(header, values))
        for want in required:  # also reachable by the requested spelling
            record.setdefault(want, record[by_norm[_norm(want)]])
        rows.append(record)
        numbers.append(r)
    return Table(path, sheet_name, header, rows, numbers)


def read_headerless(path, columns: tuple[str, ...], *, corpus: str, sheet=None) -> Table:
    """A sheet or CSV without a header row (CAS(ME)^2, the MEGC2019 ground truth): `columns` name the
    first len(columns) columns in order."""
    path = Path(path)
    cells, sheet_name = _read_raw(path, sheet)
    rows, numbers = [], []
    for r, row in enumerate(cells, start=1):
        values = [_cell_text(v) for v in row]
        if not any(values):
            continue
        if len(values) < len(columns):
            raise ArchiveError(f"{corpus}: {path.name} row {r} has {len(values)} columns, expected "
                               f"at least {len(columns)} ({', '.join(columns)})")
        rows.append(dict(zip(columns, values)))
        numbers.append(r)
    return Table(path, sheet_name, tuple(columns), rows, numbers)


def find_file(root, names: tuple[str, ...], *, corpus: str, what: str) -> Path:
    """The first of `names` (glob patterns allowed) found under `root` (searched recursively)."""
    root = Path(root)
    for name in names:
        found = sorted(root.rglob(name))
        if found:
            return found[0]
    raise ArchiveError(f"{corpus}: no {what} under {root}; expected one of {list(names)}")


def find_dir(root, names: tuple[str, ...], *, corpus: str, what: str, below: bool = False) -> Path:
    """The first existing `root/<name>` (name may be a relative path) among `names`; with `below`, also
    `<folder>/<name>` for each folder in root (after root itself)."""
    found = first_dir(root, names, below=below)
    if found is None:
        where = f"{root} (or one level below)" if below else f"{root}"
        raise ArchiveError(f"{corpus}: no {what} in {where}; expected one of the folders {list(names)}")
    return found


def first_dir(root, names: tuple[str, ...], *, below: bool = False) -> Path | None:
    """`find_dir` without the error: None when no folder of `names` exists."""
    root = Path(root)
    bases = [root, *sorted(p for p in root.iterdir() if p.is_dir())] if below else [root]
    for base in bases:
        for name in names:
            if (base / name).is_dir():
                return base / name
    return None


def frame_number(path) -> int:
    """The trailing integer of a file stem: `img46.jpg` -> 46, `006_05562.jpg` -> 5562."""
    match = re.search(r"(\d+)\D*$", Path(path).stem)
    if match is None:
        raise ArchiveError(f"{path}: frame file name has no trailing number")
    return int(match.group(1))


def list_frames(folder, *, corpus: str, where: str) -> dict[int, Path]:
    """Frame number -> file of every image in `folder`, in numeric order (a string sort is wrong)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArchiveError(f"{corpus}: {where}: clip folder {folder} does not exist")
    frames: dict[int, Path] = {}
    for path in folder.iterdir():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        n = frame_number(path)
        if n in frames:
            raise ArchiveError(f"{corpus}: {where}: frames {frames[n].name} and {path.name} in {folder} "
                               f"have the same number {n}")
        frames[n] = path
    if not frames:
        raise ArchiveError(f"{corpus}: {where}: clip folder {folder} holds no images")
    return dict(sorted(frames.items()))


def frame_numbers(folder, *, corpus: str) -> list[int] | None:
    """The frame numbers in `folder` (in order), or None when it cannot be listed (no folder, no images,
    two files with one number); for a reader's checks, the builder reports the error itself."""
    try:
        return list(list_frames(folder, corpus=corpus, where=str(folder)))
    except ArchiveError:
        return None


def frames_fit(numbers: list[int] | None, onset: int, offset: int, *, selected: bool) -> bool:
    """Do onset..offset agree with the frames on disk (`numbers`, from `frame_numbers`)? A selected
    folder (onset..offset only) starts at the onset and ends at the offset; a full clip contains both.
    No frames (None or empty) counts as not fitting."""
    if not numbers or onset > offset:
        return False
    if selected:
        return numbers[0] == onset and numbers[-1] == offset
    return onset in numbers and offset in numbers


def int_or_none(text: str) -> int | None:
    """An integer cell's value (`46`, `46.0`, ` 46 `), or None for anything else."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def parse_int(text: str, *, corpus: str, where: str, field: str) -> int:
    """An integer cell; `46`, `46.0` and ` 46 ` are fine, anything else names the cell."""
    value = int_or_none(text)
    if value is None:
        raise ArchiveError(f"{corpus}: {where}: {field} is {text!r}, expected an integer frame number")
    return value


def parse_aus(text: str) -> tuple[int, ...]:
    """AU numbers of a FACS code string: `4+7`, `R12 + R15`, `L1+2`, `R14A`, `12 or 14`, `1,2`.

    Every number is an AU (L/R/A-E letters are side and intensity and are ignored); AUs outside
    `taxonomy.AU_VOCAB` (e.g. 38, 43, eye movements 61-64) are not part of the AU vector.
    """
    return tuple(sorted({int(n) for n in re.findall(r"\d+", str(text))}))


def au_vector(text: str) -> list[int]:
    """Multi-hot over `taxonomy.AU_VOCAB` of a FACS code string (AUs outside the vocabulary are left out)."""
    return taxonomy.au_multi_hot([a for a in parse_aus(text) if a in taxonomy.AU_VOCAB])


def normalise_emotion(raw: str, mapping: dict[str, str], *, corpus: str, where: str) -> str:
    """The taxonomy name of a corpus's emotion string (`mapping` keys are lower-case)."""
    key = _norm(raw)
    if key not in mapping:
        raise ArchiveError(f"{corpus}: {where}: unknown emotion {raw!r}; expected one of {sorted(mapping)}")
    return mapping[key]


def subject_digits(text: str, *, corpus: str, where: str) -> int:
    """The subject number inside `6`, `006`, `sub06`, `s6`, `S06`, `spNO.6` (the last run of digits)."""
    match = re.search(r"(\d+)\D*$", str(text).strip())
    if match is None:
        raise ArchiveError(f"{corpus}: {where}: subject {text!r} has no number")
    return int(match.group(1))
