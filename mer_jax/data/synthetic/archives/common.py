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


# Subjects (0-based, seed 0) whose synthetic faces OpenCV's Haar cascades find with both eyes
# (measured in tests/test_face_align.py's set-up): raw-variant fixtures use these identities.
DETECTABLE_SUBJECTS = (4, 11, 14, 0, 3, 5, 7, 8, 10, 13, 18, 19, 20, 21, 22, 23)


def raw_frames(subject_index: int, sample_index: int, emotion: str, num_frames: int, *,
               face_resolution: int = 128, frame_size: tuple[int, int] = (320, 240),
               background: int = 90) -> np.ndarray:
    """RGB uint8 [num_frames, H, W, 3]: an uncropped "camera" frame with the clip's face pasted
    off-centre on a plain background, as raw corpus frames are; the face is one the Haar cascades
    find (`DETECTABLE_SUBJECTS`), so raw variants can be aligned in tests."""
    face_subject = DETECTABLE_SUBJECTS[subject_index % len(DETECTABLE_SUBJECTS)]
    faces = clip_frames(face_subject, sample_index, emotion, num_frames, resolution=face_resolution,
                        num_subjects=max(DETECTABLE_SUBJECTS) + 1)
    width, height = frame_size
    if face_resolution + 20 > min(width, height):
        raise ValueError(f"frame_size {frame_size} too small for a {face_resolution} px face")
    out = np.full((num_frames, height, width, 3), background, np.uint8)
    top, left = (height - face_resolution) // 2, (width - face_resolution) // 3
    out[:, top:top + face_resolution, left:left + face_resolution] = faces
    return out
