"""Face alignment for raw clips (mer_jax.data.face_align): real Haar detection on procedural faces pasted
into a 640x480 "raw" frame with a known similarity transform, the transform maths, the reported
face-box fallback, FaceNotFoundError, one transform per clip, and dtype / channel handling."""
import cv2
import numpy as np
import pytest

from mer_jax.data import face_align as fa
from mer_jax.data.synthetic import SyntheticConfig, generate_sample
from mer_jax.data.synthetic.clips import subject_face

# Procedural faces at 256 px (seed 0). Subjects 4, 11 and 14 are found by all three frontal-face
# cascades, with and without histogram equalisation (checked with OpenCV 4.14); some other subjects
# (pale brows, dark skin, glasses) are missed by the Haar cascades.
FACES = SyntheticConfig(resolution=256, num_subjects=16, samples_per_subject=2, num_frames=8)
RAW_W, RAW_H = 640, 480


def _raw_frame(image: np.ndarray, scale: float, angle_deg: float, shift=(0.0, 0.0), background=120):
    """Paste a 256 px face into a 640x480 frame: rotate by angle_deg (cv2 convention: counter-clockwise
    on screen) and scale about its centre, centre it, then shift. Returns frame and the 2x3 map."""
    matrix = cv2.getRotationMatrix2D((127.5, 127.5), angle_deg, scale)
    matrix[:, 2] += (RAW_W / 2 - 128 + shift[0], RAW_H / 2 - 128 + shift[1])
    canvas = np.full((RAW_H, RAW_W) + image.shape[2:], background, np.uint8)
    cv2.warpAffine(image, matrix, (RAW_W, RAW_H), dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
    return canvas, matrix


def _face(subject: int):
    face = subject_face(FACES, subject)
    marks, _ = face.identity.landmarks(FACES.resolution)
    return face.rgb, np.array([marks["eye_r"], marks["eye_l"]], np.float64)  # image-left eye first


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


# ------------------------------------------------------------------------------------------- config

def test_config_defaults_and_template():
    config = fa.AlignConfig()
    assert (config.output_size, config.detector) == (224, "opencv")
    eyes = config.template_eyes()
    # Symmetric about the centre column, both eyes on one row, d = 0.30 of the side.
    np.testing.assert_allclose(eyes[:, 0].mean(), (224 - 1) / 2)
    assert eyes[0, 1] == eyes[1, 1]
    np.testing.assert_allclose(eyes[1, 0] - eyes[0, 0], 0.30 * 224)
    assert fa.AlignConfig(face_cascades=["haarcascade_frontalface_alt.xml"]).face_cascades == (
        "haarcascade_frontalface_alt.xml",)


@pytest.mark.parametrize("field, value", [
    ("output_size", 8), ("output_size", 224.0), ("detector", "dlib"), ("eye_y", 1.2), ("eye_left_x", 0.7),
    ("box_eye_right_x", 0.0), ("face_cascades", ()), ("min_face_fraction", 0.0), ("min_neighbors", 0),
    ("max_roll_deg", 120.0), ("mtcnn_min_confidence", 1.5),
])
def test_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=f"AlignConfig.{field} "):
        fa.AlignConfig(**{field: value})


def test_missing_cascade_file_is_named():
    with pytest.raises(ValueError, match="no_such_cascade.xml"):
        fa.estimate_alignment(np.full((64, 64), 128, np.uint8),
                              fa.AlignConfig(face_cascades=("no_such_cascade.xml",)))


# -------------------------------------------------------------------------------------------- maths

def test_similarity_from_points_is_exact_similarity():
    rng = np.random.default_rng(0)
    src, dst = rng.uniform(0, 500, (2, 2)), rng.uniform(0, 200, (2, 2))
    matrix = fa.similarity_from_points(src, dst)
    np.testing.assert_allclose(_apply(matrix, src), dst, atol=1e-9)
    assert matrix[0, 0] == pytest.approx(matrix[1, 1]) and matrix[0, 1] == pytest.approx(-matrix[1, 0])
    with pytest.raises(ValueError, match="coincide"):
        fa.similarity_from_points([[1, 2], [1, 2]], dst)


def test_apply_alignment_undoes_a_known_warp():
    """Matrix convention: source pixel -> output pixel. Warping a face into a raw frame with M and
    applying the alignment M^-1 gives the face back (bilinear twice: small differences only)."""
    face, _ = _face(4)
    raw, matrix = _raw_frame(face, 1.3, 12.0, shift=(-30, 15))
    inverse = cv2.invertAffineTransform(matrix)
    alignment = fa.Alignment(matrix=inverse, method="eyes", detector="opencv")
    assert alignment.scale == pytest.approx(1 / 1.3) and alignment.rotation_deg == pytest.approx(12.0)
    (back,) = fa.apply_alignment([raw], alignment, 256, antialias=False)
    assert back.shape == face.shape and back.dtype == np.uint8
    inner = (slice(8, -8), slice(8, -8))   # the pasted square's edge is blended with the background
    assert np.abs(back[inner].astype(float) - face[inner]).mean() < 3.0


# ---------------------------------------------------------------------------------------- detection

@pytest.mark.parametrize("subject, scale, angle, shift", [
    (4, 1.0, 0.0, (0, 0)), (11, 1.15, -10.0, (-70, 30)), (14, 0.95, 6.0, (60, -25)),
])
def test_opencv_eyes_map_to_template(subject, scale, angle, shift):
    """Real Haar detection on a simulated raw frame: the true eye centres land on the template within
    a few output pixels (Haar eye boxes are coarse), and the estimated rotation undoes the known one."""
    face, eyes = _face(subject)
    raw, matrix = _raw_frame(face, scale, angle, shift)
    config = fa.AlignConfig()
    alignment = fa.estimate_alignment(raw, config)
    assert (alignment.method, alignment.detector, alignment.note) == ("eyes", "opencv", "")
    error = np.linalg.norm(_apply(alignment.matrix, _apply(matrix, eyes)) - config.template_eyes(), axis=1)
    assert error.max() < 6.0, error                      # of 224 px; the template eye distance is 67 px
    assert alignment.rotation_deg == pytest.approx(angle, abs=3.0)
    # Output scale: template eye distance over the true eye distance in the raw frame.
    true_distance = np.linalg.norm(np.diff(_apply(matrix, eyes), axis=0))
    assert alignment.scale == pytest.approx(0.30 * 224 / true_distance, rel=0.06)
    # Source eye points lie inside the reported face box.
    x, y, w, h = alignment.face_box
    assert np.all((alignment.eyes >= (x, y)) & (alignment.eyes <= (x + w, y + h)))


def test_grey_frame_gives_the_same_alignment():
    face, _ = _face(11)
    raw, _ = _raw_frame(face, 1.0, 4.0)
    rgb = fa.estimate_alignment(raw, fa.AlignConfig())
    grey = fa.estimate_alignment(cv2.cvtColor(raw, cv2.COLOR_RGB2GRAY), fa.AlignConfig())
    np.testing.assert_allclose(grey.matrix, rgb.matrix)
    grey_1 = cv2.cvtColor(raw, cv2.COLOR_RGB2GRAY)[..., None]   # HxWx1 works too
    assert fa.estimate_alignment(grey_1, fa.AlignConfig()).method == "eyes"


def test_face_box_fallback_is_reported():
    """A face whose eye pair is rejected (tilted beyond max_roll_deg) falls back to the face box: a
    scale + translation only, reported in `method` and `note`, still framing the face."""
    face, eyes = _face(11)
    raw, matrix = _raw_frame(face, 1.15, -10.0, (-70, 30))
    config = fa.AlignConfig(max_roll_deg=2.0)
    alignment = fa.estimate_alignment(raw, config)
    assert alignment.method == "face_box" and alignment.detector == "opencv"
    assert "eyes not found" in alignment.note and "face box" in alignment.note
    assert alignment.matrix[0, 1] == 0 and alignment.matrix[1, 0] == 0
    assert alignment.matrix[0, 0] == pytest.approx(alignment.matrix[1, 1])
    # The box's typical eye positions go onto the template ...
    x, y, w, h = alignment.face_box
    box_eyes = np.array([[x + 0.31 * w, y + 0.40 * h], [x + 0.69 * w, y + 0.40 * h]])
    np.testing.assert_allclose(alignment.eyes, box_eyes)
    np.testing.assert_allclose(_apply(alignment.matrix, box_eyes), config.template_eyes(), atol=1e-9)
    # ... and the real eyes end up near it (no rotation correction: a coarser crop).
    error = np.linalg.norm(_apply(alignment.matrix, _apply(matrix, eyes)) - config.template_eyes(), axis=1)
    assert error.max() < 0.12 * 224, error


@pytest.mark.parametrize("frame", [np.full((RAW_H, RAW_W, 3), 128, np.uint8),
                                   np.random.default_rng(0).integers(0, 256, (RAW_H, RAW_W), np.uint8)],
                         ids=["blank", "noise"])
def test_no_face_raises(frame):
    with pytest.raises(fa.FaceNotFoundError, match="no face found by the OpenCV Haar cascades") as info:
        fa.estimate_alignment(frame, fa.AlignConfig())
    assert "640x480" in str(info.value) and "haarcascade_frontalface_default.xml" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_auto_without_mtcnn_uses_opencv(monkeypatch):
    monkeypatch.setattr(fa, "mtcnn_available", lambda: False)
    face, _ = _face(14)
    raw, _ = _raw_frame(face, 1.0, 0.0)
    assert fa.estimate_alignment(raw, fa.AlignConfig(detector="auto")).detector == "opencv"


# ------------------------------------------------------------------------------------ clips, dtypes

def test_align_clip_uses_one_transform_from_the_onset_frame():
    sample = generate_sample(FACES, 4, 0)
    clip = sample["frames"][sample["onset"]:]
    raws = [_raw_frame(frame, 1.1, 5.0, (20, -10))[0] for frame in clip]
    # A frame with the whole face moved by 25 px: re-detection would follow it, one clip transform must not.
    moved = np.roll(raws[-1], (0, 25), axis=(0, 1))
    config = fa.AlignConfig(output_size=160)
    out, alignment = fa.align_clip(raws + [moved], config)
    assert alignment.method == "eyes"
    np.testing.assert_allclose(alignment.matrix, fa.estimate_alignment(raws[0], config).matrix)
    assert len(out) == len(raws) + 1
    assert all(o.shape == (160, 160, 3) and o.dtype == np.uint8 for o in out)
    for raw, o in zip(raws + [moved], out):
        np.testing.assert_array_equal(o, fa.apply_alignment([raw], alignment, 160)[0])
    # Consecutive aligned frames differ only by the micro-motion and noise.
    assert np.abs(out[1].astype(float) - out[0]).mean() < 4.0
    # The moved frame is not re-centred: it is the last frame seen through the onset transform
    # shifted by A (25, 0), A the transform's linear part.
    shifted = alignment.matrix.copy()
    shifted[:, 2] += alignment.matrix[:, :2] @ (25.0, 0.0)
    expected = cv2.warpAffine(raws[-1], shifted, (160, 160), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    # (OpenCV quantises sample positions to 1/32 px: a grey level or two of rounding.)
    assert np.abs(out[-1].astype(int) - expected).max() <= 2
    assert np.abs(out[-1].astype(float) - out[-2]).mean() > 10
    # An array clip [T, H, W, 3] works the same way.
    out_array, _ = fa.align_clip(np.stack(raws), config)
    np.testing.assert_array_equal(np.stack(out_array), np.stack(out[:-1]))


@pytest.mark.parametrize("shape, dtype", [((48, 64), np.uint8), ((48, 64, 1), np.uint8),
                                          ((48, 64, 3), np.uint8), ((48, 64), np.float32),
                                          ((48, 64, 3), np.uint16)])
def test_apply_keeps_dtype_and_channels(shape, dtype):
    frames = np.random.default_rng(1).integers(0, 200, (3,) + shape).astype(dtype)
    alignment = fa.Alignment(matrix=np.array([[0.5, 0.0, 2.0], [0.0, 0.5, 1.0]]), method="face_box",
                             detector="opencv")
    out = fa.apply_alignment(frames, alignment, 24)
    assert len(out) == 3
    assert all(o.shape == (24, 24) + shape[2:] and o.dtype == dtype for o in out)


def test_antialias_blurs_before_shrinking():
    stripes = np.tile(np.array([0, 255], np.uint8), (64, 32))   # 1-px stripes, 64 x 64
    alignment = fa.Alignment(matrix=np.array([[0.25, 0.0, 0.0], [0.0, 0.25, 0.0]]), method="eyes",
                             detector="opencv")
    sharp = fa.apply_alignment([stripes], alignment, 16, antialias=False)[0]
    smooth = fa.apply_alignment([stripes], alignment, 16)[0]
    # Aliasing: bilinear sampling at every 4th pixel hits black stripes only; blurred first, the
    # result is close to the mean grey everywhere.
    assert abs(sharp.mean() - 127.5) > 100
    assert abs(smooth.mean() - 127.5) < 15 and np.ptp(smooth[2:-2, 2:-2]) < 40


def test_bad_inputs_are_named():
    alignment = fa.Alignment(matrix=np.eye(2, 3), method="eyes", detector="opencv")
    with pytest.raises(ValueError, match="frame 1 has shape"):
        fa.apply_alignment([np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8)], alignment, 8)
    with pytest.raises(ValueError, match="dtype int64"):
        fa.apply_alignment([np.zeros((8, 8), np.int64)], alignment, 8)
    with pytest.raises(ValueError, match="at least one frame"):
        fa.align_clip([], fa.AlignConfig())
    with pytest.raises(ValueError, match="uint8"):
        fa.estimate_alignment(np.zeros((64, 64), np.float32), fa.AlignConfig())
    with pytest.raises(ValueError, match="HxWx3"):
        fa.estimate_alignment(np.zeros((64, 64, 4), np.uint8), fa.AlignConfig())
    with pytest.raises(ValueError, match="method"):
        fa.Alignment(matrix=np.eye(2, 3), method="landmarks", detector="opencv")
    with pytest.raises(ValueError, match="2x3"):
        fa.Alignment(matrix=np.eye(3), method="eyes", detector="opencv")


# ------------------------------------------------------------------------------------------- MTCNN

def test_mtcnn_eyes_and_auto():
    """MTCNN 1.0 ships its weights: runs offline (about 4 s, TensorFlow import included)."""
    pytest.importorskip("mtcnn")
    face, eyes = _face(11)
    raw, matrix = _raw_frame(face, 1.15, -10.0, (-70, 30))
    config = fa.AlignConfig(detector="mtcnn")
    alignment = fa.estimate_alignment(raw, config)
    assert (alignment.method, alignment.detector) == ("eyes", "mtcnn")
    error = np.linalg.norm(_apply(alignment.matrix, _apply(matrix, eyes)) - config.template_eyes(), axis=1)
    assert error.max() < 8.0, error   # MTCNN's eye keypoints: ~2-5 px of 224 on these faces
    assert fa.estimate_alignment(raw, fa.AlignConfig(detector="auto")).detector == "mtcnn"
    with pytest.raises(fa.FaceNotFoundError, match="MTCNN"):
        fa.estimate_alignment(np.full((RAW_H, RAW_W), 128, np.uint8), config)
