"""FlyingChairs-style frame pairs with exact optical flow, ours: for training RAFT (mer_jax/train/raft_training.py).

FlyingChairs (Dosovitskiy et al., "FlowNet", ICCV 2015) moves chair renderings over Flickr photographs
by random affine motions; its images are licensed, so here every layer is synthetic. A pair is a stack
of layers, back to front: a background and `num_objects` foreground objects. Each layer k has
- a texture on its own canvas: a sum of 4 octaves of Gaussian-blurred RGB noise (sigma 1, 2, 4, 8
  canvas px, random weight each), normalised per channel and put around a random mean colour with a
  random contrast; the background canvas is twice the frame, an object's canvas holds its shape;
- a shape on that canvas (objects only): a random polygon (3-8 vertices at sorted random angles,
  radii 0.5-1 R) or an ellipse (semi-axes 0.4-1 R), R = `object_radius` x the shorter frame side;
- a placement P1 (canvas -> frame 1): the background's canvas centre on the frame centre, any rotation,
  scale 0.8-1.25; an object's canvas centre anywhere in the frame, any rotation, no scaling;
- a motion M (frame 1 -> frame 2), an affine map about the layer's centre c in frame 1:
  M(x) = c + t + s R(theta) (x - c). Per pair a motion strength d is drawn log-uniform in
  `displacement_px`; per layer |t| is uniform up to d in a random direction, and theta and s - 1 are
  drawn so that at the layer's radius r (half the shorter frame side for the background, R for
  objects) rotation and scaling each move points by up to `rotation_share` x d and `scale_share` x d.
Frame f in (1, 2) is rendered with placement P_f (P2 = M P1): every layer's texture by cv2.warpAffine
(bicubic, reflected border) and its shape by cv2.warpAffine (nearest: hard edges), then each pixel
shows the frontmost layer whose shape covers it (the background covers all). Hence the surface point
shown at pixel x of frame 1 (layer k) is shown at M_k(x) in frame 2, and the flow at x is exactly
M_k(x) - x, k the frontmost layer at x in frame 1: the displacement of the visible surface, defined at
occluded pixels too, as FlyingChairs' flow is. Gaussian noise of std `noise_std` (0..1 scale) is added
to each frame independently. `visible` marks the pixels whose surface is also seen in frame 2: every
frame-2 pixel that bilinear sampling at M_k(x) = x + flow reads (the up to four around it with a
nonzero weight) lies inside the frame and shows layer k. Zero motion (`displacement_px=(0, 0)`) gives identical frames and zero flow.
"""
from __future__ import annotations

import dataclasses

import numpy as np

_OCTAVES = (1.0, 2.0, 4.0, 8.0)  # blur sigmas of the texture's noise octaves, canvas px


@dataclasses.dataclass(frozen=True)
class FlyingShapesConfig:
    """Knobs of the generator (module docstring); lengths in pixels of the frame."""
    height: int = 64
    width: int = 64
    displacement_px: tuple[float, float] = (0.1, 8.0)  # motion strength d: log-uniform (or fixed when equal)
    rotation_share: float = 0.3     # rotation moves a layer's rim by up to this x d
    scale_share: float = 0.3        # scaling moves a layer's rim by up to this x d
    num_objects: tuple[int, int] = (2, 6)   # inclusive range
    object_radius: tuple[float, float] = (0.1, 0.35)  # R, fraction of the shorter side
    noise_std: float = 0.0

    def __post_init__(self):
        for name in ("height", "width"):
            side = getattr(self, name)
            if side < 64 or side % 8:
                raise ValueError(f"FlyingShapesConfig.{name} must be a multiple of 8 and at least 64, got {side}")
        low, high = self.displacement_px
        if not 0 <= low <= high or (low == 0 < high):
            raise ValueError("FlyingShapesConfig.displacement_px must be (low, high) with 0 < low <= high "
                             f"(log-uniform) or low == high (fixed, 0 = no motion), got {self.displacement_px}")
        if not 0 <= self.num_objects[0] <= self.num_objects[1]:
            raise ValueError(f"FlyingShapesConfig.num_objects must be 0 <= low <= high, got {self.num_objects}")
        if not 0 < self.object_radius[0] <= self.object_radius[1]:
            raise ValueError(f"FlyingShapesConfig.object_radius must be 0 < low <= high, got {self.object_radius}")
        if min(self.rotation_share, self.scale_share, self.noise_std) < 0:
            raise ValueError("FlyingShapesConfig.rotation_share, scale_share and noise_std must be >= 0")


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """[h, w, 3] float32 in [0, 1]: blurred-noise octaves around a random colour (module docstring)."""
    import cv2

    total = np.zeros((height, width, 3), np.float32)
    for sigma in _OCTAVES:
        noise = cv2.GaussianBlur(rng.standard_normal((height, width, 3)).astype(np.float32), (0, 0), sigma)
        total += rng.uniform(0.2, 1.0) * noise / max(float(noise.std()), 1e-6)
    total = (total - total.mean((0, 1))) / np.maximum(total.std((0, 1)), 1e-6)
    colour = rng.uniform(0.2, 0.8, 3).astype(np.float32)
    return np.clip(colour + rng.uniform(0.08, 0.2) * total, 0.0, 1.0)


def _shape_mask(rng: np.random.Generator, side: int, radius: float) -> np.ndarray:
    """[side, side] uint8 mask (1 inside) of a random polygon or ellipse centred on the canvas."""
    import cv2

    mask = np.zeros((side, side), np.uint8)
    centre = (side - 1) / 2
    if rng.random() < 0.5:
        count = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = radius * rng.uniform(0.5, 1.0, count)
        points = np.stack([centre + radii * np.cos(angles), centre + radii * np.sin(angles)], -1)
        cv2.fillPoly(mask, [np.rint(points).astype(np.int32)], 1)
    else:
        axes = (int(round(radius * rng.uniform(0.4, 1.0))), int(round(radius * rng.uniform(0.4, 1.0))))
        cv2.ellipse(mask, (int(round(centre)),) * 2, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


def _similarity(centre_from, centre_to, angle: float, scale: float) -> np.ndarray:
    """3x3 matrix of x -> centre_to + scale R(angle) (x - centre_from)."""
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    matrix = np.eye(3)
    matrix[:2, :2] = rotation
    matrix[:2, 2] = np.asarray(centre_to) - rotation @ np.asarray(centre_from)
    return matrix


def _motion(rng: np.random.Generator, centre, d: float, radius: float, config: FlyingShapesConfig) -> np.ndarray:
    """3x3 motion M(x) = c + t + s R(theta) (x - c) of strength d (module docstring)."""
    t = d * np.sqrt(rng.random()) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    theta = config.rotation_share * d / radius * rng.uniform(-1, 1)
    scale = 1 + config.scale_share * d / radius * rng.uniform(-1, 1)
    return _similarity(centre, np.asarray(centre) + t, theta, scale)


def _render(layers, matrices, height: int, width: int):
    """(image [H, W, 3], label [H, W]: frontmost layer index) of layers (texture, mask or None) placed by
    3x3 canvas -> frame `matrices`."""
    import cv2

    image = np.zeros((height, width, 3), np.float32)
    label = np.zeros((height, width), np.int32)
    for k, ((texture, mask), matrix) in enumerate(zip(layers, matrices)):
        warped = cv2.warpAffine(texture, matrix[:2], (width, height), flags=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REFLECT_101)
        if mask is None:
            image[:] = warped
            continue
        inside = cv2.warpAffine(mask, matrix[:2], (width, height), flags=cv2.INTER_NEAREST, borderValue=0) > 0
        image[inside] = warped[inside]
        label[inside] = k
    return np.clip(image, 0.0, 1.0), label


def _pair(rng: np.random.Generator, config: FlyingShapesConfig):
    h, w = config.height, config.width
    short = min(h, w)
    low, high = config.displacement_px
    d = low if low == high else float(np.exp(rng.uniform(np.log(low), np.log(high))))
    frame_centre = np.array([(w - 1) / 2, (h - 1) / 2])
    background = (_texture(rng, 2 * h, 2 * w), None)
    layers = [background]
    places = [_similarity(np.array([w - 0.5, h - 0.5]), frame_centre, rng.uniform(0, 2 * np.pi),
                          np.exp(rng.uniform(np.log(0.8), np.log(1.25))))]
    motions = [_motion(rng, frame_centre, d, short / 2, config)]
    for _ in range(int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))):
        radius = short * rng.uniform(*config.object_radius)
        side = int(np.ceil(2 * radius)) + 3
        layers.append((_texture(rng, side, side), _shape_mask(rng, side, radius)))
        centre = rng.uniform([0, 0], [w - 1, h - 1])
        places.append(_similarity(np.full(2, (side - 1) / 2), centre, rng.uniform(0, 2 * np.pi), 1.0))
        motions.append(_motion(rng, centre, d, radius, config))
    image1, label1 = _render(layers, places, h, w)
    image2, label2 = _render(layers, [m @ p for m, p in zip(motions, places)], h, w)

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    points = np.stack([xs, ys, np.ones_like(xs)], -1)                  # [H, W, 3]
    moved = np.einsum("kij,hwj->khwi", np.stack(motions)[:, :2], points)  # [layers, H, W, 2]
    target = np.take_along_axis(moved, label1[None, ..., None], 0)[0]
    flow = (target - points[..., :2]).astype(np.float32)
    visible = np.ones((h, w), bool)
    x0, y0 = np.floor(target[..., 0]), np.floor(target[..., 1])
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = (x0 + dx).astype(int), (y0 + dy).astype(int)
            read = ((dx == 0) | (target[..., 0] > x0)) & ((dy == 0) | (target[..., 1] > y0))  # weight > 0
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            shown = label2[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)] == label1
            visible &= ~read | (inside & shown)
    if config.noise_std:
        image1 = image1 + rng.normal(0, config.noise_std, image1.shape).astype(np.float32)
        image2 = image2 + rng.normal(0, config.noise_std, image2.shape).astype(np.float32)
    return image1, image2, flow, visible


def flying_shapes(config: FlyingShapesConfig, num_pairs: int, seed, dtype: str = "uint8"):
    """(image1 [N, H, W, 3], image2 [N, H, W, 3], flow float32 [N, H, W, 2] (u right, v down, px, frame 1
    -> frame 2), visible bool [N, H, W]) of `num_pairs` pairs drawn from `seed` (an int or a tuple of
    ints). dtype "uint8" (0..255) or "float32" (0..1) for the images."""
    if dtype not in ("uint8", "float32"):
        raise ValueError(f"flying_shapes dtype must be 'uint8' or 'float32', got {dtype!r}")
    rng = np.random.default_rng(seed)
    pairs = [_pair(rng, config) for _ in range(num_pairs)]
    image1, image2, flow, visible = (np.stack(part) for part in zip(*pairs))
    if dtype == "uint8":
        image1, image2 = (np.clip(np.rint(x * 255), 0, 255).astype(np.uint8) for x in (image1, image2))
    else:
        image1, image2 = (np.clip(x, 0.0, 1.0) for x in (image1, image2))
    return image1, image2, flow, visible
