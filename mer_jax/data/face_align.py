"""Face alignment and cropping for the raw (uncropped) variants of the corpora.

DESIGN (data flow, TFDS builders): "face alignment and cropping for raw variants: detect face and eyes
on the onset frame, similarity transform to a template, crop, resize; the same transform for every
frame of the clip". One transform per clip keeps the micro-motion intact: re-detecting on every frame
would add detector jitter far larger than the 1-3 px facial motion the networks must see.

- Detection on the onset frame: OpenCV Haar cascades (`detector="opencv"`, no extra dependency) find the
  face box, then the two eyes inside its upper part; MTCNN (`detector="mtcnn"`, package `mtcnn`, imported
  lazily) gives the box and the eye keypoints directly; `detector="auto"` is MTCNN when it imports,
  else OpenCV. Several faces: the largest box is used (raw MER clips show one subject).
- Similarity transform (rotation, uniform scale, translation) that sends the eye centres exactly onto
  the template eye positions of the `output_size` square (`AlignConfig.eye_left_x` etc.).
- Fallback, reported: a face box without a usable eye pair gives `Alignment.method == "face_box"`,
  a scale + translation that puts the box's typical eye positions (`box_eye_*`) on the template, and
  `Alignment.note` says why; no face at all raises `FaceNotFoundError`.

Coordinates are OpenCV's: x right, y down, pixel centres at integers. Template fractions are of the
output side measured from the square's outer edge, so a fraction f is pixel f * output_size - 0.5
(the default template is symmetric about the centre column (output_size - 1) / 2).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Sequence

import cv2
import numpy as np

DETECTORS = ("opencv", "mtcnn", "auto")
METHODS = ("eyes", "face_box")


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    """How to detect, where the eyes go, and how the crop is sampled. Validated on construction.

    Template (default): eyes at 35% and 65% of the width, 35% of the height, so the inter-eye
    distance d is 0.30 of the side. With approximate adult proportions (brows ~0.35 d above the
    pupils, chin ~1.8-1.9 d below, cheekbone width ~2.2 d) the brows sit near 0.24, the chin near
    0.90-0.92 and the cheeks at 0.17-0.83 of the side: the whole face with a margin (the longer
    procedural faces of mer_jax.data.synthetic, chin ~2.0 d below the eyes, reach ~0.96). Eyes at
    30% / 70% and 38% height would make d = 0.40 and put the chin at ~1.1: cut off.
    """
    output_size: int = 224
    detector: str = "opencv"   # "opencv" | "mtcnn" | "auto" (mtcnn if importable, else opencv)
    # Template: eye centres in the output square, fractions of its side. "left" = image left
    # (the subject's right eye).
    eye_left_x: float = 0.35
    eye_right_x: float = 0.65
    eye_y: float = 0.35
    # Fallback (method "face_box"): typical eye centres inside a detected face box (x, y, w, h), as
    # fractions of its width / height, mapped onto the template without rotation. Measured on Haar
    # boxes of the procedural faces (means 0.32 / 0.68 of the width, 0.41 of the height, std ~0.04);
    # not checked on real faces (no licensed data here), so a coarse prior, rounded symmetric.
    box_eye_left_x: float = 0.31
    box_eye_right_x: float = 0.69
    box_eye_y: float = 0.40
    # OpenCV: cascade files (names in cv2.data.haarcascades, or paths), each list tried in order until
    # one finds something.
    face_cascades: tuple[str, ...] = ("haarcascade_frontalface_default.xml",
                                      "haarcascade_frontalface_alt2.xml",
                                      "haarcascade_frontalface_alt.xml")
    eye_cascades: tuple[str, ...] = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
    # Smallest face side searched, fraction of min(frame H, W). Raw MER clips are close-ups whose face
    # spans well over a quarter of the frame height; a floor this high also keeps small face-like
    # textures (more frequent after the contrast-stretched retry) from being taken for the face.
    min_face_fraction: float = 0.25
    min_neighbors: int = 3           # Haar detectMultiScale minNeighbors (higher: fewer false hits)
    max_roll_deg: float = 30.0       # an eye pair tilted more than this is rejected (opencv)
    # MTCNN: faces below this confidence are ignored.
    mtcnn_min_confidence: float = 0.9
    # Anti-aliasing: when the transform shrinks the image by a factor f > 1, frames are blurred first
    # with a Gaussian of sigma = (f - 1) / 2 source pixels (skimage.transform.resize's default).
    antialias: bool = True

    def __post_init__(self):
        """Validate every field (clear messages naming the field); lists become tuples."""
        size = self.output_size
        _require(isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 16,
                 "output_size", f"must be an integer >= 16, got {size!r}")
        _require(self.detector in DETECTORS, "detector", f"must be one of {DETECTORS}, got {self.detector!r}")
        for name in ("eye_left_x", "eye_right_x", "eye_y", "box_eye_left_x", "box_eye_right_x", "box_eye_y"):
            value = getattr(self, name)
            _require(isinstance(value, (int, float)) and 0 < value < 1, name,
                     f"must be a fraction in (0, 1), got {value!r}")
        _require(self.eye_left_x < self.eye_right_x, "eye_left_x",
                 f"must be < eye_right_x ({self.eye_left_x} >= {self.eye_right_x})")
        _require(self.box_eye_left_x < self.box_eye_right_x, "box_eye_left_x",
                 f"must be < box_eye_right_x ({self.box_eye_left_x} >= {self.box_eye_right_x})")
        for name in ("face_cascades", "eye_cascades"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            value = tuple(value)
            _require(len(value) >= 1 and all(isinstance(v, str) and v for v in value), name,
                     f"must be a non-empty sequence of cascade file names, got {value!r}")
            object.__setattr__(self, name, value)
        _require(0 < self.min_face_fraction <= 1, "min_face_fraction",
                 f"must be in (0, 1], got {self.min_face_fraction!r}")
        _require(isinstance(self.min_neighbors, (int, np.integer)) and self.min_neighbors >= 1,
                 "min_neighbors", f"must be an integer >= 1, got {self.min_neighbors!r}")
        _require(0 < self.max_roll_deg <= 90, "max_roll_deg",
                 f"must be in (0, 90], got {self.max_roll_deg!r}")
        _require(0 <= self.mtcnn_min_confidence <= 1, "mtcnn_min_confidence",
                 f"must be in [0, 1], got {self.mtcnn_min_confidence!r}")

    def template_eyes(self) -> np.ndarray:
        """float64 [2, 2]: (x, y) output pixels of the image-left and image-right eye centres."""
        s = self.output_size
        return np.array([[self.eye_left_x * s - 0.5, self.eye_y * s - 0.5],
                         [self.eye_right_x * s - 0.5, self.eye_y * s - 0.5]])


def _require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ValueError(f"AlignConfig.{field} {message}")


class FaceNotFoundError(ValueError):
    """No face was found on the frame used for alignment; the message names the detector and frame size."""


@dataclasses.dataclass(frozen=True, eq=False)
class Alignment:
    """One clip's transform and how it was found.

    `matrix` maps source pixels to output pixels (cv2.warpAffine's forward matrix). `method` is "eyes"
    (eye centres on the template) or "face_box" (fallback: no usable eye pair; see `note`). The extra
    fields are diagnostics: the face box (x, y, w, h) and the source eye centres used (image-left
    first; for "face_box", the positions assumed from the box).
    """
    matrix: np.ndarray        # 2x3 float64 affine, source pixel -> output pixel
    method: str               # "eyes" or "face_box" (fallback) -- which rule was used
    detector: str             # "opencv" | "mtcnn"
    face_box: tuple[float, float, float, float] | None = None
    eyes: np.ndarray | None = None   # float64 [2, 2] source (x, y) of the image-left / image-right eye
    note: str = ""            # why the fallback was used ("" for method "eyes")

    def __post_init__(self):
        matrix = np.asarray(self.matrix, np.float64)
        if matrix.shape != (2, 3) or not np.all(np.isfinite(matrix)):
            raise ValueError(f"Alignment.matrix must be a finite 2x3 affine matrix, got shape {matrix.shape}")
        object.__setattr__(self, "matrix", matrix)
        if self.method not in METHODS:
            raise ValueError(f"Alignment.method must be one of {METHODS}, got {self.method!r}")
        if self.detector not in ("opencv", "mtcnn"):
            raise ValueError(f"Alignment.detector must be 'opencv' or 'mtcnn', got {self.detector!r}")

    @property
    def scale(self) -> float:
        """Output pixels per source pixel."""
        return float(math.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def rotation_deg(self) -> float:
        """Angle of the rotation part, atan2(m10, m00) in degrees (positive turns +x towards +y: clockwise
        on screen, as y points down)."""
        return float(math.degrees(math.atan2(self.matrix[1, 0], self.matrix[0, 0])))


# ---------------------------------------------------------------------------------------------- maths

def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) sending src[0] -> dst[0] and
    src[1] -> dst[1] exactly (complex form z -> a z + b)."""
    src = np.asarray(src, np.float64).reshape(2, 2)
    dst = np.asarray(dst, np.float64).reshape(2, 2)
    p0, p1 = complex(*src[0]), complex(*src[1])
    q0, q1 = complex(*dst[0]), complex(*dst[1])
    if abs(p1 - p0) < 1e-9:
        raise ValueError(f"similarity_from_points: the two source points coincide ({src[0].tolist()})")
    a = (q1 - q0) / (p1 - p0)
    b = q0 - a * p0
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def _box_eyes(box, config: AlignConfig) -> np.ndarray:
    x, y, w, h = box
    return np.array([[x + config.box_eye_left_x * w, y + config.box_eye_y * h],
                     [x + config.box_eye_right_x * w, y + config.box_eye_y * h]], np.float64)


# ------------------------------------------------------------------------------------------ detection

def _check_frame(frame) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[-1] == 3)):
        raise ValueError(f"expected a grey HxW or RGB HxWx3 frame, got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"face detection needs a uint8 frame, got dtype {frame.dtype}")
    if min(frame.shape[:2]) < 16:
        raise ValueError(f"frame of shape {frame.shape} is too small to hold a face")
    return frame


def _grey(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _clahe(grey: np.ndarray) -> np.ndarray:
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(grey)


@functools.lru_cache(maxsize=None)
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = name if os.path.isfile(name) else os.path.join(cv2.data.haarcascades, name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise ValueError(f"cannot load the Haar cascade {name!r} (looked for {path})")
    return cascade


def _detect_haar(names: Sequence[str], image: np.ndarray, min_size: int, max_size: int | None,
                 min_neighbors: int) -> tuple[np.ndarray, str | None]:
    """Boxes [N, 4] (x, y, w, h) of the first cascade in `names` that finds any, and its name."""
    min_size = max(int(min_size), 1)
    kwargs = {"minSize": (min_size, min_size)}
    if max_size is not None:
        kwargs["maxSize"] = (max(int(max_size), min_size + 1),) * 2
    for name in names:
        boxes = _cascade(name).detectMultiScale(image, scaleFactor=1.1, minNeighbors=min_neighbors, **kwargs)
        if len(boxes):
            return np.asarray(boxes, np.float64).reshape(-1, 4), name
    return np.zeros((0, 4)), None


def _eye_pair(candidates: np.ndarray, box, config: AlignConfig) -> np.ndarray | None:
    """The most plausible (image-left, image-right) pair of eye centres among candidate boxes."""
    x, y, w, h = box
    centres = candidates[:, :2] + candidates[:, 2:] / 2
    sizes = np.sqrt(candidates[:, 2] * candidates[:, 3])
    prior_d = (config.box_eye_right_x - config.box_eye_left_x) * w
    best, best_cost = None, np.inf
    for i in range(len(centres)):
        for j in range(len(centres)):
            (ax, ay), (bx, by) = centres[i], centres[j]
            if not ax < x + w / 2 < bx:   # one eye on each side of the box centre
                continue
            dist = math.hypot(bx - ax, by - ay)
            roll = math.degrees(math.atan2(by - ay, bx - ax))
            ratio = max(sizes[i], sizes[j]) / min(sizes[i], sizes[j])
            plausible = (0.5 * prior_d <= dist <= 1.6 * prior_d and abs(roll) <= config.max_roll_deg
                         and ratio <= 2.0)
            if not plausible:
                continue
            mid_x, mid_y = (ax + bx) / 2, (ay + by) / 2
            cost = (abs(dist / prior_d - 1) + abs(math.log(ratio)) + 2 * abs(mid_x - (x + w / 2)) / w
                    + 2 * abs(mid_y - (y + config.box_eye_y * h)) / h)
            if cost < best_cost:
                best, best_cost = np.array([[ax, ay], [bx, by]]), cost
    return best


def _estimate_opencv(frame: np.ndarray, config: AlignConfig) -> Alignment:
    grey = _grey(frame)
    height, width = grey.shape
    min_face = max(int(config.min_face_fraction * min(height, width)), 24)
    # The plain grey frame first; only if no cascade finds a face there, a local contrast stretch
    # (CLAHE), which rescues faces with weak shading contrast (dark skin, pale brows).
    for image in (grey, _clahe(grey)):
        faces, face_cascade = _detect_haar(config.face_cascades, image, min_face, None, config.min_neighbors)
        if len(faces):
            break
    else:
        raise FaceNotFoundError(
            f"no face found by the OpenCV Haar cascades {list(config.face_cascades)} in a {width}x{height} "
            f"frame (grey and contrast-equalised; faces of side >= {min_face} px searched, "
            f"min_neighbors={config.min_neighbors})")
    box = tuple(float(v) for v in faces[np.argmax(faces[:, 2] * faces[:, 3])])
    x, y, w, h = box
    # Eyes: search the band of the box that holds them (10%-65% of its height) with each eye cascade,
    # on the plain and then on the CLAHE band, until a plausible pair turns up.
    top, bottom = max(int(round(y + 0.10 * h)), 0), min(int(round(y + 0.65 * h)), height)
    left, right = max(int(round(x)), 0), min(int(round(x + w)), width)
    band = grey[top:bottom, left:right]
    pair, counts = None, [0]
    for image in (band, _clahe(band)):
        for name in config.eye_cascades:
            found, _ = _detect_haar((name,), image, 0.08 * w, 0.45 * w, config.min_neighbors)
            counts.append(len(found))
            if len(found) >= 2:
                pair = _eye_pair(found + (left, top, 0, 0), box, config)
                if pair is not None:
                    break
        if pair is not None:
            break
    if pair is not None:
        return Alignment(similarity_from_points(pair, config.template_eyes()), "eyes", "opencv",
                         face_box=box, eyes=pair)
    eyes = _box_eyes(box, config)
    note = (f"eyes not found: the Haar eye cascades {list(config.eye_cascades)} gave {max(counts)} "
            f"candidate(s) but no plausible pair in the upper face of the box {[round(v) for v in box]} "
            f"(found by {face_cascade}); used the face box")
    return Alignment(similarity_from_points(eyes, config.template_eyes()), "face_box", "opencv",
                     face_box=box, eyes=eyes, note=note)


def mtcnn_available() -> bool:
    """True when the `mtcnn` package (and its TensorFlow) imports."""
    try:
        import mtcnn  # noqa: F401
    except Exception:  # ImportError, or TensorFlow failing to load
        return False
    return True


@functools.lru_cache(maxsize=1)
def _mtcnn():
    from mtcnn import MTCNN  # lazy: pulls in TensorFlow; weights ship with the package (no download)
    return MTCNN()


def _estimate_mtcnn(frame: np.ndarray, config: AlignConfig) -> Alignment:
    rgb = frame if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=-1)
    height, width = rgb.shape[:2]
    results = [r for r in _mtcnn().detect_faces(np.ascontiguousarray(rgb))
               if float(r["confidence"]) >= config.mtcnn_min_confidence]
    if not results:
        raise FaceNotFoundError(f"no face found by MTCNN with confidence >= {config.mtcnn_min_confidence} "
                                f"in a {width}x{height} frame")
    best = max(results, key=lambda r: float(r["box"][2]) * float(r["box"][3]))
    box = tuple(float(v) for v in best["box"])
    points = best.get("keypoints") or {}
    if "left_eye" in points and "right_eye" in points:
        eyes = np.array([points["left_eye"], points["right_eye"]], np.float64)
        eyes = eyes[np.argsort(eyes[:, 0])]   # image-left first, whatever MTCNN calls it
        if np.linalg.norm(eyes[1] - eyes[0]) >= 1.0:
            return Alignment(similarity_from_points(eyes, config.template_eyes()), "eyes", "mtcnn",
                             face_box=box, eyes=eyes)
    eyes = _box_eyes(box, config)
    note = "eyes not found: MTCNN gave no distinct eye keypoints; used the face box"
    return Alignment(similarity_from_points(eyes, config.template_eyes()), "face_box", "mtcnn", face_box=box,
                     eyes=eyes, note=note)


def estimate_alignment(frame: np.ndarray, config: AlignConfig) -> Alignment:
    """Detect the face and eyes on `frame` (uint8 HxW grey or HxWx3 RGB) and return the transform.

    Raises FaceNotFoundError (message names the detector and frame size; the caller adds the clip)."""
    frame = _check_frame(frame)
    detector = config.detector
    if detector == "auto":
        detector = "mtcnn" if mtcnn_available() else "opencv"
    if detector == "mtcnn":
        return _estimate_mtcnn(frame, config)
    return _estimate_opencv(frame, config)


# ------------------------------------------------------------------------------------------- warping

_CV_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def apply_alignment(frames, alignment: Alignment, output_size: int, *,
                    antialias: bool = True) -> list[np.ndarray]:
    """Warp every frame with the same `alignment.matrix` into an output_size x output_size crop.

    Frames: a sequence or array of HxW, HxWx1 or HxWx3 images of one shape; the outputs keep the
    dtype and channel layout. Bilinear sampling, replicated borders; when the transform shrinks the
    image, a Gaussian pre-blur (sigma = (1/scale - 1) / 2 source pixels) avoids aliasing."""
    if isinstance(output_size, bool) or not isinstance(output_size, (int, np.integer)) or output_size < 1:
        raise ValueError(f"output_size must be a positive integer, got {output_size!r}")
    frames = list(frames) if not isinstance(frames, np.ndarray) else list(frames)
    if not frames:
        raise ValueError("apply_alignment needs at least one frame")
    shape = np.asarray(frames[0]).shape
    sigma = max(0.0, (1.0 / alignment.scale - 1.0) / 2.0) if antialias else 0.0
    out = []
    for index, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.shape != shape:
            raise ValueError(f"frame {index} has shape {frame.shape}, frame 0 has {shape}: a clip's frames "
                             f"must share one size")
        if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[-1] in (1, 3))):
            raise ValueError(f"frame {index}: expected HxW, HxWx1 or HxWx3, got shape {frame.shape}")
        if frame.dtype.type not in _CV_DTYPES:
            raise ValueError(f"frame {index}: dtype {frame.dtype} not supported; expected one of "
                             f"{[np.dtype(d).name for d in _CV_DTYPES]}")
        source = np.ascontiguousarray(frame)
        if sigma > 0.05:
            source = cv2.GaussianBlur(source, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)
        warped = cv2.warpAffine(source, alignment.matrix, (int(output_size), int(output_size)),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if frame.ndim == 3 and warped.ndim == 2:   # OpenCV drops a trailing channel of size 1
            warped = warped[..., None]
        out.append(warped)
    return out


def align_clip(frames, config: AlignConfig) -> tuple[list[np.ndarray], Alignment]:
    """Estimate the alignment on frames[0] (the onset frame) and apply it to every frame."""
    frames = list(frames) if not isinstance(frames, np.ndarray) else list(frames)
    if not frames:
        raise ValueError("align_clip needs at least one frame (the onset frame first)")
    alignment = estimate_alignment(frames[0], config)
    return apply_alignment(frames, alignment, config.output_size, antialias=config.antialias), alignment
