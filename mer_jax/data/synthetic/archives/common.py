"""Helpers every fixture-archive writer shares: synthetic clips of a given emotion, frame files, sheets."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from mer_jax.data.synthetic import SyntheticConfig, generate_sample

# Coarse labels of some corpora (SMIC, CAS(ME)^2) rendered as a prototype expression of their class.
_RENDERED_AS = {"positive": "happiness", "negative": "disgust"}


@functools.lru_cache(maxsize=None)
def _config(emotion: str, resolution: int, num_subjects: int, seed: int) -> SyntheticConfig:
    return SyntheticConfig(num_subjects=num_subjects, samples_per_subject=64, resolution=resolution,
                           num_frames=8, seed=seed, class_weights={_RENDERED_AS.get(emotion, emotion): 1.0},
                           amplitude_px=(2.0, 3.0), distractor_prob=0.0, au_keep_prob=1.0)


def clip_frames(subject_index: int, sample_index: int, emotion: str, num_frames: int, *,
                resolution: int = 32, num_subjects: int = 100, seed: int = 0) -> np.ndarray:
    """RGB uint8 [num_frames, R, R, 3] of one synthetic clip of `emotion` (the taxonomy name), the
    subject's face fixed by `subject_index`. The 8 rendered frames (neutral -> apex -> neutral) are
    resampled to `num_frames`."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    config = _config(emotion, resolution, num_subjects, seed)
    frames = generate_sample(config, subject_index % num_subjects, sample_index % 64)["frames"]
    index = np.round(np.linspace(0, len(frames) - 1, num_frames)).astype(int)
    return frames[index]


def write_frames(folder, frames: np.ndarray, names: list[str], *, grey: bool = False) -> None:
    """Write RGB frames to `folder/<name>`; the suffix picks the format (jpg, bmp, png)."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for frame, name in zip(frames, names, strict=True):
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if grey else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(folder / name), image):
            raise OSError(f"cannot write {folder / name}")


def write_sheet(path, header: list | None, rows: list[list], *, preamble: list[list] = (),
                sheet: str = "Sheet1", extra_sheets: dict[str, list[list]] | None = None) -> None:
    """An xlsx file: `preamble` rows, then `header` (None: no header row), then `rows`; blank cells
    are None. `extra_sheets` adds further sheets (name -> rows)."""
    import openpyxl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    first = book.active
    first.title = sheet
    for row in [*preamble, *([header] if header is not None else []), *rows]:
        first.append(list(row))
    for name, sheet_rows in (extra_sheets or {}).items():
        extra = book.create_sheet(name)
        for row in sheet_rows:
            extra.append(list(row))
    book.save(path)


def write_csv(path, rows: list[list], *, header: list | None = None, line_ending: str = "\n") -> None:
    """A CSV file with the given line ending (the MEGC2019 ground truth uses CRLF and no header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(str(v) for v in row) for row in ([header] if header else []) + list(rows)]
    path.write_bytes((line_ending.join(lines) + line_ending).encode())
