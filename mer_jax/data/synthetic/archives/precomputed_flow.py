"""Fixture archive of precomputed flow images, as STSTNet and HTNet release their network inputs.

Writes, from the synthetic corpus, the manual_dir of the `precomputed_flow` builder:
  <root>/<label csv>                      HTNet `combined_3_class2_for_optical_flow.csv` (header
                                          dataset,sub,filename_o,label,apex,imagename,sub_filename) or
                                          the MEGC2019 GT `combined_3class_gt.csv` (no header, CRLF)
  <root>/STSNet_whole_norm_u_v_os/<sub>_<filename> .png   (or without the space)
Subjects carry the real id forms of the MEGC2019 composite: CASME II `sub01`, SMIC `s01`, SAMM `006`
(written `6` in the GT csv, as the official file does); clip names follow each corpus (`EP01_01f`,
`s01_ne_01`, `006_1_2`). Each image is real flow: Dual TV-L1 from the onset to the apex frame of a
synthetic clip, optical strain from it, each of u, v, strain min-max normalised to 0..255 on its
own, resized to `image_size` and saved with R, G, B = u, v, strain (our reading of the released
images; their channel order is not documented).

This writer produces a preprocessed archive, i.e. the output of a feature step, so it imports
`mer_jax.features` (TV-L1 flow, strain) inside the function: the one place where `data` uses the
layer above it, and only to write test fixtures.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mer_jax.data import taxonomy
from mer_jax.data.synthetic import SyntheticConfig, generate_sample
from mer_jax.data.synthetic.archives.common import write_csv

IMAGE_FOLDER = "STSNet_whole_norm_u_v_os"
HTNET_CSV = "combined_3_class2_for_optical_flow.csv"
GT_CSV = "combined_3class_gt.csv"
HTNET_HEADER = ["dataset", "sub", "filename_o", "label", "apex", "imagename", "sub_filename"]
# Emotions drawn in turn (shifted per subject): every subject gets all three MEGC classes.
_EMOTIONS = ("disgust", "happiness", "surprise", "repression", "happiness", "anger", "surprise", "sadness")
_SMIC_CODE = {"negative": "ne", "positive": "po", "surprise": "sur"}


@dataclasses.dataclass(frozen=True)
class FlowSample:
    """One written sample: its CSV fields, the canonical subject id and the image as written (RGB)."""
    dataset: str
    subject: str          # canonical form: sub01, s01, 006
    gt_subject: str       # as the MEGC2019 GT writes it: sub01, s01, 6
    filename: str
    label: int
    apex: int             # apex frame index of the synthetic clip
    image_path: Path
    image: np.ndarray     # uint8 [S, S, 3], channels (u, v, strain)

    @property
    def clip(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.filename}"


def subject_ids(dataset: str, count: int) -> list[tuple[str, str]]:
    """(canonical id, GT form) of the first `count` subjects of a corpus, in the real numbering."""
    if dataset == "casme2":
        return [(f"sub{k:02d}", f"sub{k:02d}") for k in range(1, count + 1)]
    if dataset == "smic":
        return [(f"s{k:02d}", f"s{k:02d}") for k in range(1, count + 1)]
    if dataset == "samm":
        return [(f"{k:03d}", str(k)) for k in range(6, 6 + count)]
    raise ValueError(f"unknown dataset {dataset!r}; expected casme2, smic or samm")


def _clip_name(dataset: str, subject: str, j: int, label: int, counts: dict) -> str:
    if dataset == "casme2":
        return f"EP{j + 1:02d}_01f"
    if dataset == "smic":
        code = _SMIC_CODE[taxonomy.MEGC3_CLASSES[label]]
        counts[code] = counts.get(code, 0) + 1
        return f"{subject}_{code}_{counts[code]:02d}"
    return f"{subject}_{j + 1}_{j % 3 + 1}"


def _config(emotion: str, resolution: int, num_subjects: int, seed: int) -> SyntheticConfig:
    return SyntheticConfig(num_subjects=num_subjects, samples_per_subject=64, resolution=resolution,
                           num_frames=8, seed=seed, class_weights={emotion: 1.0}, amplitude_px=(2.0, 3.0),
                           distractor_prob=0.0, au_keep_prob=1.0)


def flow_image(onset_rgb: np.ndarray, apex_rgb: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 [S, S, 3] (u, v, strain), each channel min-max normalised to 0..255, of two RGB frames."""
    import cv2
    import jax

    from mer_jax.features.flow_tvl1 import tvl1_flow
    from mer_jax.features.strain import optical_strain

    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (onset_rgb, apex_rgb)]
    flow = tvl1_flow(*grey)
    strain = np.asarray(jax.jit(optical_strain)(flow))
    channels = []
    for x in (flow[..., 0], flow[..., 1], strain):
        low, high = float(x.min()), float(x.max())
        channels.append((x - low) / (high - low) if high > low else np.zeros_like(x))
    image = cv2.resize(np.stack(channels, -1).astype(np.float32), (image_size, image_size),
                       interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def write_precomputed_flow_archive(root, *, csv_format: str = "htnet", space_before_png: bool = True,
                                   subjects_per_dataset: int = 2, samples_per_subject: int = 6,
                                   datasets=("casme2", "smic", "samm"), resolution: int = 48,
                                   image_size: int = 28, with_apex: bool = False, seed: int = 0) -> list[FlowSample]:
    """Write the archive under `root` (the builder's manual_dir); returns the samples written.

    csv_format: `htnet` (header, LF) or `gt` (MEGC2019 ground truth: no header, CRLF, SAMM subjects
    as integers). space_before_png: name images `<sub>_<filename> .png` (HTNet's release) or without
    the space. with_apex: fill HTNet's `apex` column with the clip's apex frame (blank in HTNet's file).
    """
    if csv_format not in ("htnet", "gt"):
        raise ValueError(f"csv_format must be 'htnet' or 'gt', got {csv_format!r}")
    num_subjects = subjects_per_dataset * len(datasets)
    samples = []
    for d, dataset in enumerate(datasets):
        for s, (subject, gt_subject) in enumerate(subject_ids(dataset, subjects_per_dataset)):
            subject_index = d * subjects_per_dataset + s
            counts = {}
            for j in range(samples_per_subject):
                emotion = _EMOTIONS[(j + subject_index) % len(_EMOTIONS)]
                clip = generate_sample(_config(emotion, resolution, num_subjects, seed), subject_index, j)
                label = taxonomy.megc3_label(emotion)
                filename = _clip_name(dataset, subject, j, label, counts)
                image = flow_image(clip["frames"][clip["onset"]], clip["frames"][clip["apex"]], image_size)
                samples.append(FlowSample(dataset=dataset, subject=subject, gt_subject=gt_subject,
                                          filename=filename, label=label, apex=int(clip["apex"]),
                                          image_path=Path(), image=image))
    return copy_archive(samples, root, csv_format=csv_format, space_before_png=space_before_png,
                        with_apex=with_apex)


def copy_archive(samples: list[FlowSample], root, *, csv_format: str = "htnet", space_before_png: bool = True,
                 with_apex: bool = False) -> list[FlowSample]:
    """Write `samples` (from `write_precomputed_flow_archive`) as an archive under `root`, with its own
    CSV format and image naming (cheap: no flow is computed); returns them with their new paths."""
    import cv2

    if csv_format not in ("htnet", "gt"):
        raise ValueError(f"csv_format must be 'htnet' or 'gt', got {csv_format!r}")
    root = Path(root)
    folder = root / IMAGE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in samples:
        path = folder / f"{sample.subject}_{sample.filename}{' ' if space_before_png else ''}.png"
        if not cv2.imwrite(str(path), sample.image[..., ::-1]):  # R, G, B = u, v, strain
            raise OSError(f"cannot write {path}")
        written.append(dataclasses.replace(sample, image_path=path))
    if csv_format == "htnet":
        rows = [[s.dataset, s.subject, s.filename, s.label, s.apex if with_apex else "",
                 f"{s.subject}_{s.filename}.jpg", ""] for s in written]
        write_csv(root / HTNET_CSV, rows, header=HTNET_HEADER)
    else:
        write_csv(root / GT_CSV, [[s.dataset, s.gt_subject, s.filename, s.label] for s in written],
                  line_ending="\r\n")
    return written
