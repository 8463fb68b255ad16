"""One synthetic subject: identity parameters, their landmarks, and the rendered neutral face and depth.

Lengths in `Identity` are fractions of the frame side, so one identity renders at any resolution.
Image x runs right and y down; the subject's right side (`_r` landmarks) is on the image's left.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

RGB = tuple[float, float, float]

_SKIN_LIGHT, _SKIN_DARK = np.array([236.0, 196.0, 170.0]), np.array([96.0, 62.0, 45.0])
_HAIR = ((25, 20, 18), (60, 40, 25), (110, 75, 40), (190, 160, 110), (140, 140, 140))
_HAIR_P = (0.4, 0.3, 0.15, 0.1, 0.05)
_IRIS = ((70, 45, 25), (40, 25, 15), (80, 110, 150), (90, 110, 70))
_GLASSES = ((30, 30, 35), (150, 135, 110), (90, 40, 30))
_FACE_HALF_WIDTH_MM = 75.0  # physical scale of the depth map


@dataclasses.dataclass(frozen=True)
class Identity:
    """Shape, placement, colours and scene of one subject (lengths: fractions of the frame side)."""
    center: tuple[float, float]      # face ellipse centre (x, y)
    axes: tuple[float, float]        # face ellipse semi-axes (horizontal, vertical)
    eye_offset: float                # horizontal distance of each eye centre from the face centre
    eye_y: float
    eye_size: tuple[float, float]    # width and height of the eye opening
    gaze: tuple[float, float]        # iris offset from the eye centre, in eye widths
    brow_y: float                    # height of the inner brow ends
    brow_arch: float
    brow_thickness: float
    nose_y: float                    # nose tip
    nose_width: float                # half width at the nose wings
    mouth_y: float
    mouth_width: float               # centre to lip corner
    lip_heights: tuple[float, float]  # upper, lower
    hairline: float                  # hairline height at the face centre
    long_hair: bool
    skin: RGB
    hair: RGB
    lips: RGB
    iris: RGB
    background: tuple[RGB, RGB, RGB]  # gradient start, gradient end, panel
    background_angle: float
    panel: tuple[float, float, float, float]  # x0, y0, x1, y1 of a panel behind the head
    light: tuple[float, float, float]  # direction towards the light (x, y, towards the camera)
    glasses: RGB | None              # frame colour, or None without glasses
    distance_mm: float               # camera to the face's outer rim
    background_mm: float
    texture_seed: int

    def landmarks(self, resolution: int) -> tuple[dict[str, np.ndarray], float]:
        """Named points (x, y) in pixels and the length unit (face half width in pixels)."""
        r = resolution
        cx, cy = self.center[0] * r, self.center[1] * r
        a, b = self.axes[0] * r, self.axes[1] * r
        eye_w, eye_h = self.eye_size[0] * r, self.eye_size[1] * r
        eye_dx, eye_y = self.eye_offset * r, self.eye_y * r
        nose_w, nose_y = self.nose_width * r, self.nose_y * r
        mouth_w, mouth_y = self.mouth_width * r, self.mouth_y * r
        lip_u, lip_l = self.lip_heights[0] * r, self.lip_heights[1] * r
        brow_y, arch = self.brow_y * r, self.brow_arch * r
        points = {
            "nose_root": (cx, eye_y - 0.1 * eye_h),
            "nose_tip": (cx, nose_y),
            "mouth": (cx, mouth_y),
            "upper_lip": (cx, mouth_y - lip_u / 2),
            "lower_lip": (cx, mouth_y + lip_l / 2),
            "chin": (cx, mouth_y + 0.6 * (cy + b - mouth_y)),
        }
        for side, sign in (("r", -1.0), ("l", 1.0)):
            ex = cx + sign * eye_dx
            points.update({
                f"eye_{side}": (ex, eye_y),
                f"upper_lid_{side}": (ex, eye_y - eye_h / 2),
                f"lower_lid_{side}": (ex, eye_y + eye_h / 2),
                f"eye_corner_outer_{side}": (ex + sign * eye_w / 2, eye_y),
                f"brow_inner_{side}": (ex - sign * 0.5 * eye_w, brow_y),
                f"brow_mid_{side}": (ex + sign * 0.1 * eye_w, brow_y - arch),
                f"brow_outer_{side}": (ex + sign * 0.7 * eye_w, brow_y + 0.2 * eye_h),
                f"cheek_{side}": (ex + sign * 0.1 * eye_w, eye_y + 0.6 * (nose_y - eye_y)),
                f"ala_{side}": (cx + sign * nose_w, nose_y - 0.1 * nose_w),
                f"mouth_corner_{side}": (cx + sign * mouth_w, mouth_y),
            })
        return {k: np.array(v, np.float32) for k, v in points.items()}, a


def make_identity(rng: np.random.Generator, glasses_prob: float) -> Identity:
    """Draw a random subject."""
    u = rng.uniform
    a = u(0.30, 0.35)
    b = a * u(1.25, 1.40)
    cx, cy = 0.5 + u(-0.015, 0.015), 0.52 + u(-0.015, 0.015)
    eye_w = a * u(0.30, 0.36)
    eye_y = cy - b * u(0.22, 0.28)
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * u() + rng.normal(0, 6, 3)
    lips = skin * np.array([0.82, 0.55, 0.55]) + np.array([30.0, 0.0, 5.0])
    light = np.array([u(-0.5, 0.5), u(-0.6, 0.1), 1.0])
    glasses = _rgb(_GLASSES[rng.integers(len(_GLASSES))]) if u() < glasses_prob else None
    x0, y0 = u(0.0, 0.6), u(0.0, 0.5)
    return Identity(
        center=(cx, cy), axes=(a, b),
        eye_offset=a * u(0.36, 0.43), eye_y=eye_y, eye_size=(eye_w, eye_w * u(0.36, 0.48)),
        gaze=(u(-0.08, 0.08), u(-0.05, 0.05)),
        brow_y=eye_y - b * u(0.12, 0.17), brow_arch=b * u(0.015, 0.04), brow_thickness=b * u(0.045, 0.07),
        nose_y=cy + b * u(0.08, 0.15), nose_width=a * u(0.16, 0.22),
        mouth_y=cy + b * u(0.36, 0.44), mouth_width=a * u(0.30, 0.38),
        lip_heights=(b * u(0.045, 0.065), b * u(0.055, 0.08)),
        hairline=cy - b * u(0.55, 0.72), long_hair=bool(u() < 0.4),
        skin=_rgb(skin), hair=_rgb(np.array(_HAIR[rng.choice(len(_HAIR), p=_HAIR_P)]) + rng.normal(0, 8, 3)),
        lips=_rgb(lips), iris=_rgb(np.array(_IRIS[rng.integers(len(_IRIS))]) + rng.normal(0, 8, 3)),
        background=tuple(_rgb(rng.uniform(40, 220, 3)) for _ in range(3)),
        background_angle=u(0, 2 * np.pi),
        panel=(x0, y0, x0 + u(0.2, 0.5), y0 + u(0.3, 0.6)),
        light=tuple(float(v) for v in light / np.linalg.norm(light)),
        glasses=glasses, distance_mm=u(550, 800), background_mm=u(1200, 2500),
        texture_seed=int(rng.integers(2**31)))


def _rgb(v) -> RGB:
    return tuple(float(c) for c in np.clip(v, 0, 255))


@dataclasses.dataclass(frozen=True)
class Face:
    """A rendered identity: neutral RGB face, the same with closed eyes, depth, glasses overlay."""
    identity: Identity
    resolution: int
    rgb: np.ndarray              # uint8 [H, W, 3], eyes open
    closed_eyes: np.ndarray      # uint8 [H, W, 3], eyelids fully closed
    depth: np.ndarray            # uint16 [H, W], distance from the camera in millimetres
    glasses: np.ndarray | None   # float32 [H, W, 4]: RGB (0-255) and alpha (0-1), or None

    def eyelid_mask(self, closure: float) -> np.ndarray:
        """float32 [H, W] weight of `closed_eyes` when the upper lids cover `closure` of each eye."""
        x, y = _grid(self.resolution)
        marks, _ = self.identity.landmarks(self.resolution)
        w, h = (s * self.resolution / 2 for s in self.identity.eye_size)
        mask = np.zeros_like(x)
        for side in ("r", "l"):
            ex, ey = marks[f"eye_{side}"]
            inside = _cover(_ellipse_sd(x, y, ex, ey, w + 0.6, h + 0.6))
            mask = np.maximum(mask, inside * _cover(y - (ey - h + closure * 2.2 * h)))
        return mask


def render_face(identity: Identity, resolution: int) -> Face:
    """Render the neutral face (open and closed eyes), its depth map and the glasses overlay."""
    painter = _Painter(identity, resolution)
    return Face(identity=identity, resolution=resolution,
                rgb=painter.paint(closed_eyes=False), closed_eyes=painter.paint(closed_eyes=True),
                depth=painter.depth(), glasses=painter.glasses())


def _grid(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:resolution, 0:resolution].astype(np.float32)
    return x, y


def _cover(signed_distance):
    """Anti-aliased coverage of a shape from the signed distance (pixels, negative inside)."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0).astype(np.float32)


def _ellipse_sd(x, y, cx, cy, ax, ay):
    """Approximate signed distance (pixels) to an axis-aligned ellipse."""
    dx, dy = (x - cx) / ax, (y - cy) / ay
    r = np.sqrt(dx * dx + dy * dy)
    grad = np.sqrt((dx / ax) ** 2 + (dy / ay) ** 2) / np.maximum(r, 1e-6)
    return (r - 1.0) / np.maximum(grad, 1e-6)


def _smooth_noise(rng, shape, sigma):
    """Gaussian-blurred white noise with unit standard deviation."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return noise / max(float(noise.std()), 1e-6)


class _Painter:
    """Draws one identity at one resolution; shared geometry is computed once."""

    def __init__(self, identity: Identity, resolution: int):
        self.i, self.r = identity, resolution
        self.x, self.y = _grid(resolution)
        self.marks, self.a = identity.landmarks(resolution)
        self.cx, self.cy = (c * resolution for c in identity.center)
        self.b = identity.axes[1] * resolution
        rng = np.random.default_rng(identity.texture_seed)
        self.skin_texture = (1 + rng.uniform(0.03, 0.06) * _smooth_noise(rng, self.x.shape, resolution / 20)
                             + rng.uniform(0.015, 0.035) * _smooth_noise(rng, self.x.shape, 0.6))
        self.hair_texture = 1 + 0.12 * _smooth_noise(rng, self.x.shape, 0.5)
        self.background_blobs = 18 * _smooth_noise(rng, self.x.shape, resolution / 10)
        self.face = _cover(_ellipse_sd(self.x, self.y, self.cx, self.cy, self.a, self.b))
        self.neck = _cover(np.abs(self.x - self.cx) - 0.55 * self.a) * (self.y > self.cy + 0.5 * self.b)
        self.height = self._height()

    def _height(self) -> np.ndarray:
        """Face surface height towards the camera (pixels): ellipsoid + nose + eye sockets + lips."""
        x, y, a, m = self.x, self.y, self.a, self.marks
        r2 = ((x - self.cx) / self.a) ** 2 + ((y - self.cy) / self.b) ** 2
        h = 0.8 * a * np.sqrt(np.clip(1 - r2, 0, 1))
        nose_w = self.i.nose_width * self.r
        root, tip = m["nose_root"], m["nose_tip"]
        h += _gauss(x, y, (root + tip) / 2, (0.4 * nose_w, (tip[1] - root[1]) / 2), 0.15 * a)
        h += _gauss(x, y, tip - (0, 0.2 * nose_w), (0.6 * nose_w, 0.6 * nose_w), 0.2 * a)
        for side in ("r", "l"):
            h += _gauss(x, y, m[f"ala_{side}"], (0.4 * nose_w, 0.4 * nose_w), 0.08 * a)
            eye_w = self.i.eye_size[0] * self.r
            h -= _gauss(x, y, m[f"eye_{side}"], (0.7 * eye_w, 0.5 * eye_w), 0.1 * a)
        h += _gauss(x, y, m["mouth"], (self.i.mouth_width * self.r, 0.1 * a), 0.05 * a)
        return h * self.face

    def paint(self, closed_eyes: bool) -> np.ndarray:
        """The RGB face as uint8 [H, W, 3]."""
        i, x, y = self.i, self.x, self.y
        img = self._background()
        skin = np.array(i.skin, np.float32)
        hair = np.array(i.hair, np.float32) * self.hair_texture[..., None]
        if i.long_hair:
            back = _cover(_ellipse_sd(x, y, self.cx, self.cy + 0.15 * self.b, 1.18 * self.a, 1.1 * self.b))
            _paint(img, hair, back * (y > i.hairline * self.r))
        _paint(img, 0.8 * skin * self.skin_texture[..., None], self.neck)
        ear_y = i.eye_y * self.r + 0.08 * self.b
        for ear_x in (self.cx - 0.97 * self.a, self.cx + 0.97 * self.a):
            ear = _cover(_ellipse_sd(x, y, ear_x, ear_y, 0.13 * self.a, 0.24 * self.b))
            _paint(img, 0.9 * skin * self.skin_texture[..., None], ear)
        _paint(img, skin * self.skin_texture[..., None], self.face)
        self._features(img, skin, closed_eyes)
        cap = _cover(_ellipse_sd(x, y, self.cx, self.cy, 1.06 * self.a, 1.05 * self.b))
        hairline = i.hairline * self.r + 0.25 * self.b * ((x - self.cx) / self.a) ** 2
        _paint(img, hair, cap * _cover(y - hairline))
        img *= self._shading()[..., None]
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)

    def _background(self) -> np.ndarray:
        i, x, y = self.i, self.x, self.y
        t = (np.cos(i.background_angle) * x + np.sin(i.background_angle) * y) / self.r
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        start, end, panel = (np.array(c, np.float32) for c in i.background)
        img = start * (1 - t[..., None]) + end * t[..., None] + self.background_blobs[..., None]
        x0, y0, x1, y1 = (v * self.r for v in i.panel)
        box = _cover(np.maximum(np.maximum(x0 - x, x - x1), np.maximum(y0 - y, y - y1)))
        _paint(img, panel, box)
        return img.astype(np.float32)

    def _features(self, img, skin, closed_eyes: bool) -> None:
        """Nasolabial folds, brows, eyes, nostrils and lips, painted in place."""
        for side in ("r", "l"):
            self._fold(img, skin, side)
            self._brow(img, skin, side)
            self._eye(img, skin, side, closed_eyes)
            self._nostril(img, skin, side)
        self._mouth(img)

    def _fold(self, img, skin, side: str) -> None:
        outward = np.array([-0.1 if side == "r" else 0.1, 0.1]) * self.a
        start = self.marks[f"ala_{side}"] + (0, 0.1 * self.a)
        end = self.marks[f"mouth_corner_{side}"] + outward
        _paint(img, 0.55 * skin, 0.18 * _cover(_segment_sd(self.x, self.y, start, end) - 0.6))

    def _brow(self, img, skin, side: str) -> None:
        i, x, y, r = self.i, self.x, self.y, self.r
        inner, outer = self.marks[f"brow_inner_{side}"], self.marks[f"brow_outer_{side}"]
        t = (x - inner[0]) / (outer[0] - inner[0])  # 0 at the inner end, 1 at the outer end
        centre = inner[1] + (outer[1] - inner[1]) * t - 4 * i.brow_arch * r * t * (1 - t)
        half = i.brow_thickness * r * (1 - 0.45 * np.clip(t, 0, 1)) / 2
        beyond_ends = np.maximum(-t, t - 1) * abs(outer[0] - inner[0])
        color = 0.9 * np.array(i.hair, np.float32) + 0.1 * skin
        _paint(img, color, 0.9 * _cover(np.maximum(np.abs(y - centre) - half, beyond_ends)))

    def _nostril(self, img, skin, side: str) -> None:
        width = self.i.nose_width * self.r
        centre = self.marks["nose_tip"] + ((-0.45 if side == "r" else 0.45) * width, 0.12 * width)
        nostril = _ellipse_sd(self.x, self.y, *centre, 0.28 * width, 0.13 * width)
        _paint(img, 0.35 * skin, 0.8 * _cover(nostril))

    def _mouth(self, img) -> None:
        i, x, y, r = self.i, self.x, self.y, self.r
        mouth_w, mouth_y = i.mouth_width * r, i.mouth_y * r
        lip_u, lip_l = i.lip_heights[0] * r, i.lip_heights[1] * r
        across = np.clip(1 - ((x - self.cx) / mouth_w) ** 2, 0, 1)
        bow = 0.25 * lip_u * np.exp(-((x - self.cx) / (0.12 * mouth_w)) ** 2)
        upper = _cover(np.maximum(mouth_y - lip_u * across ** 0.7 + bow - y, y - mouth_y))
        lower = _cover(np.maximum(y - mouth_y - lip_l * across ** 0.6, mouth_y - y))
        lips = np.array(i.lips, np.float32)
        _paint(img, lips, np.maximum(upper, lower) * (across > 0))
        _paint(img, 0.4 * lips, _cover(np.maximum(np.abs(y - mouth_y) - 0.5, np.abs(x - self.cx) - mouth_w)))

    def _eye(self, img, skin, side: str, closed: bool) -> None:
        x, y, centre = self.x, self.y, self.marks[f"eye_{side}"]
        eye_w, eye_h = self.i.eye_size[0] * self.r, self.i.eye_size[1] * self.r
        sd = _ellipse_sd(x, y, *centre, eye_w / 2, eye_h / 2)
        if closed:
            _paint(img, 0.9 * skin * self.skin_texture[..., None], _cover(sd - 0.6))
            _paint(img, 0.3 * skin, _cover(np.abs(sd) - 0.5) * (y > centre[1]))
            return
        sclera = _cover(sd)
        _paint(img, np.array([235.0, 232.0, 225.0]), sclera)
        iris_centre = centre + np.array(self.i.gaze) * eye_w
        iris_radius = 0.55 * eye_h
        iris_sd = np.hypot(x - iris_centre[0], y - iris_centre[1]) - iris_radius
        _paint(img, np.array(self.i.iris, np.float32), sclera * _cover(iris_sd))
        _paint(img, np.array([15.0, 12.0, 12.0]), sclera * _cover(iris_sd + 0.6 * iris_radius))
        _paint(img, 0.25 * skin, _cover(np.abs(sd) - 0.6) * (0.4 + 0.6 * (y < centre[1])))

    def _shading(self) -> np.ndarray:
        """Lambertian shading of the head from the height field, 1 where the surface faces the camera."""
        gy, gx = np.gradient(self.height)
        normal = np.stack([-gx, -gy, np.ones_like(gx)], -1)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        light = np.array(self.i.light, np.float32)
        ambient = 0.45
        lambert = ambient + (1 - ambient) * np.clip(normal @ light, 0, 1)
        frontal = ambient + (1 - ambient) * light[2]
        return 1 + (lambert / frontal - 1) * self.face

    def depth(self) -> np.ndarray:
        """uint16 [H, W] distance from the camera in millimetres (face surface, neck, background)."""
        mm_per_px = _FACE_HALF_WIDTH_MM / self.a
        depth = np.full(self.x.shape, self.i.background_mm, np.float32)
        depth += (self.i.distance_mm + 0.4 * self.a * mm_per_px - depth) * self.neck
        depth += (self.i.distance_mm - self.height * mm_per_px - depth) * self.face
        return np.rint(depth).astype(np.uint16)

    def glasses(self) -> np.ndarray | None:
        """RGBA overlay of the glasses frame and lenses, or None."""
        if self.i.glasses is None:
            return None
        x, y, m = self.x, self.y, self.marks
        eye_w = self.i.eye_size[0] * self.r
        thick = max(1.0, 0.012 * self.r)
        alpha = np.zeros_like(x)
        for side, sign in (("r", -1.0), ("l", 1.0)):
            ex, ey = m[f"eye_{side}"]
            sd = _ellipse_sd(x, y, ex, ey, 0.8 * eye_w, 0.6 * eye_w)
            alpha = np.maximum(alpha, np.maximum(0.08 * _cover(sd), _cover(np.abs(sd) - thick / 2)))
            temple_x = (ex + sign * 0.8 * eye_w, self.cx + sign * self.a)
            temple = np.maximum(np.abs(y - (ey - 0.15 * eye_w)) - thick / 2,
                                np.maximum(min(temple_x) - x, x - max(temple_x)))
            alpha = np.maximum(alpha, _cover(temple))
        half_bridge = m["eye_l"][0] - 0.8 * eye_w - self.cx
        bridge_y = m["eye_l"][1] - 0.2 * eye_w
        bridge = np.maximum(np.abs(y - bridge_y) - thick / 2, np.abs(x - self.cx) - half_bridge)
        alpha = np.maximum(alpha, _cover(bridge))
        color = np.broadcast_to(np.array(self.i.glasses, np.float32), x.shape + (3,))
        return np.concatenate([color, alpha[..., None]], -1).astype(np.float32)


def _paint(img, color, alpha) -> None:
    """Alpha-blend `color` (RGB or [H, W, 3]) into `img` in place."""
    alpha = np.asarray(alpha, np.float32)[..., None]
    img *= 1 - alpha
    img += alpha * color


def _gauss(x, y, centre, sigma, height):
    return height * np.exp(-0.5 * (((x - centre[0]) / sigma[0]) ** 2 + ((y - centre[1]) / sigma[1]) ** 2))


def _segment_sd(x, y, p, q):
    """Distance (pixels) to the segment from p to q."""
    d = q - p
    t = np.clip(((x - p[0]) * d[0] + (y - p[1]) * d[1]) / float(d @ d), 0, 1)
    return np.hypot(x - p[0] - t * d[0], y - p[1] - t * d[1])
