"""Apex spotting: D&C-RoIs (DFR-Net, papers/dfr-net.txt section 3.1.1, after Liong et al. [40]) or the midpoint.

D&C-RoIs as section 3.1.1 describes it:
1. LBP features (Ahonen et al. [41]) of every frame in three facial regions: the left eye and eyebrow,
   the right eye and eyebrow, and the mouth (`DEFAULT_ROIS`, fractions of an aligned face crop).
2. Per region, the correlation of a frame's LBP histogram h2 with the onset frame's h1, Eq. (1):
   d = sum_i h1_i h2_i / sqrt(sum_i h1_i^2 * sum_i h2_i^2) over the B bins. The variation of frame t is
   1 - d (0 for a frame whose histograms equal the onset's), summed over the regions.
3. Divide and conquer (D&C) on the variation curve for the frame of the local maximum that is the apex;
   by Eq. (3) any frame from the onset (the clip's first frame) to the offset (its last) may be it.

Where the paper is silent we choose (config fields; docs/deviations.md, "Apex spotting"):
- LBP: 8 neighbours at distance `lbp_radius` on the square (the diagonal ones at (+-r, +-r), no
  interpolation), bit set when neighbour >= centre; `uniform` maps codes to Ahonen's 59 labels
  (LBP^u2_8), else 256 bins; `grid` splits each region into blocks whose histograms are concatenated
  before Eq. (1), as Ahonen's face descriptor does (5 x 5 by default: a whole-region histogram barely
  changes when a brow moves by 2 px, since LBP codes move with the texture).
- `blur`: the frames are smoothed by a Gaussian of sigma = blur x the frame side before LBP, so that
  sensor noise does not flip the codes of flat skin (0 = none).
- D&C as we read Liong et al.: the peaks are the local maxima of the curve (a frame above its
  predecessor and not below its successor; the last frame counts when it rises). The frame range is
  halved and the half whose peaks sum higher is kept (a half without peaks never is; a tie keeps the
  earlier half), until one peak is left: the apex. With `subtract_floor`, a peak counts by its height
  above the curve's lowest value after the onset (the change noise alone causes), so that the many small
  noise peaks of a long tail do not outweigh the expression's. `smooth` is a centred moving average of the curve before the search (1 = none).
  `search="argmax"` takes the frame of highest variation instead (the rule the paper states before
  the D&C refinement).
The midpoint rule, (onset + offset) // 2, is what every corpus builder stores when a corpus has no apex
(tfds_builders/corpus_builder.py); `method="midpoint"` gives it for a clip.

`spot_apexes` is jitted and batched over padded clips; `spot_apex` checks and spots one clip;
`spot_corpus_apexes` spots the clips of a frame corpus with a progress bar.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax.data.schema import MISSING_APEX_FIX
from mer_jax.features.host_frames import resize_square

log = logging.getLogger(__name__)

METHODS = ("dc_rois", "midpoint")
SEARCHES = ("dc", "argmax")


@dataclasses.dataclass(frozen=True)
class RoI:
    """A region of the aligned crop: name and box (x0, y0, x1, y1) as fractions of the side."""
    name: str
    x0: float
    y0: float
    x1: float
    y1: float


# The three regions of section 3.1.1 on a crop aligned to the template of mer_jax.data.face_align
# (AlignConfig: eye centres at x = 0.35 and 0.65, y = 0.35; inter-eye distance d = 0.30; brows near
# y = 0.24, mouth near 0.68-0.72, chin near 0.90). Left and right are image sides.
DEFAULT_ROIS = (
    # Eye and brow: temple to midline; from above the raised brow (AU1/2 lift it) to below the lower
    # lid and the top of the cheek (AU6/7 raise them).
    RoI("eye_brow_left", 0.17, 0.15, 0.50, 0.45),
    RoI("eye_brow_right", 0.50, 0.15, 0.83, 0.45),
    # Mouth: the lips with their corners pulled sideways (AU20) or up (AU12), from under the nose to
    # above the chin boss (AU16/17/26 move the lower lip and chin).
    RoI("mouth", 0.28, 0.58, 0.72, 0.85),
)


@dataclasses.dataclass(frozen=True)
class ApexSpottingConfig:
    """Knobs of D&C-RoIs; section 3.1.1 fixes none of them, the defaults are our choices."""
    rois: tuple[RoI, ...] = DEFAULT_ROIS
    lbp_radius: int = 1
    uniform: bool = True             # Ahonen's 59 uniform labels; False: 256 bins
    grid: tuple[int, int] = (5, 5)   # blocks per region (rows, columns)
    blur: float = 0.015              # Gaussian pre-smoothing sigma, fraction of the frame side; 0 = none
    search: str = "dc"               # "dc" (divide and conquer) | "argmax"
    subtract_floor: bool = True      # D&C: peak heights above the curve's minimum after the onset
    smooth: int = 3                  # odd moving-average window over the curve; 1 = none
    frame_size: int = 128            # spot_corpus_apexes resizes frames to this square side first; 0 = as stored

    def __post_init__(self):
        if not self.rois:
            raise ValueError("ApexSpottingConfig.rois must hold at least one region")
        for roi in self.rois:
            if not (0 <= roi.x0 < roi.x1 <= 1 and 0 <= roi.y0 < roi.y1 <= 1):
                raise ValueError(f"ApexSpottingConfig.rois: {roi} must satisfy 0 <= x0 < x1 <= 1 and "
                                 f"0 <= y0 < y1 <= 1")
        if self.lbp_radius < 1:
            raise ValueError(f"ApexSpottingConfig.lbp_radius must be >= 1, got {self.lbp_radius}")
        if len(self.grid) != 2 or min(self.grid) < 1:
            raise ValueError(f"ApexSpottingConfig.grid must be (rows, columns), each >= 1, got {self.grid}")
        if self.blur < 0:
            raise ValueError(f"ApexSpottingConfig.blur must be >= 0, got {self.blur}")
        if self.search not in SEARCHES:
            raise ValueError(f"ApexSpottingConfig.search must be one of {SEARCHES}, got {self.search!r}")
        if self.frame_size < 0:
            raise ValueError(f"ApexSpottingConfig.frame_size must be >= 0, got {self.frame_size}")
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ValueError(f"ApexSpottingConfig.smooth must be an odd window >= 1, got {self.smooth}")

    @property
    def num_bins(self) -> int:
        """B of Eq. (1), per block."""
        return 59 if self.uniform else 256


# ------------------------------------------------------------------------------------------------ LBP

# Neighbour offsets (dy, dx) in units of the radius, clockwise from the top-left; bit k is neighbour k.
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def uniform_table() -> np.ndarray:
    """int32 [256]: Ahonen's u2 labels, 0..57 for the 58 codes with at most 2 circular 0/1 transitions
    (in increasing code order), 58 for every other code."""
    table = np.full(256, 58, np.int32)
    label = 0
    for code in range(256):
        bits = [(code >> k) & 1 for k in range(8)]
        if sum(bits[k] != bits[(k + 1) % 8] for k in range(8)) <= 2:
            table[code] = label
            label += 1
    return table


_UNIFORM = uniform_table()


def lbp_codes(image: jnp.ndarray, radius: int = 1) -> jnp.ndarray:
    """int32 [H - 2r, W - 2r] LBP codes (0..255) of the interior pixels of a grey image [H, W]."""
    height, width = image.shape
    centre = image[radius:height - radius, radius:width - radius]
    codes = jnp.zeros(centre.shape, jnp.int32)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        y, x = radius + dy * radius, radius + dx * radius
        neighbour = image[y:y + centre.shape[0], x:x + centre.shape[1]]
        codes = codes | ((neighbour >= centre).astype(jnp.int32) << bit)
    return codes


def gaussian_blur(image: jnp.ndarray, sigma: float) -> jnp.ndarray:
    """Separable Gaussian blur of a grey image [H, W] (kernel radius ceil(3 sigma), edges repeated)."""
    if sigma <= 0:
        return image
    radius = int(math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel = jnp.asarray(kernel / kernel.sum(), image.dtype)
    padded = jnp.pad(image, radius, mode="edge")
    rows = jax.vmap(lambda row: jnp.convolve(row, kernel, mode="valid"))(padded)
    return jax.vmap(lambda column: jnp.convolve(column, kernel, mode="valid"), in_axes=1, out_axes=1)(rows)


def roi_boxes(config: ApexSpottingConfig, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Boxes (y0, y1, x0, x1) of the regions in the LBP code map of an H x W frame (the frame without
    its `lbp_radius` border); ValueError when a region has fewer than 2 x 2 pixels per block."""
    r = config.lbp_radius
    boxes = []
    for roi in config.rois:
        y0, y1 = (min(max(round(f * height) - r, 0), height - 2 * r) for f in (roi.y0, roi.y1))
        x0, x1 = (min(max(round(f * width) - r, 0), width - 2 * r) for f in (roi.x0, roi.x1))
        if y1 - y0 < 2 * config.grid[0] or x1 - x0 < 2 * config.grid[1]:
            raise ValueError(f"frames of {height} x {width} pixels are too small for the region {roi.name!r}: "
                             f"it spans {max(y1 - y0, 0)} x {max(x1 - x0, 0)} LBP pixels, and its "
                             f"{config.grid[0]} x {config.grid[1]} blocks need at least 2 x 2 each")
        boxes.append((y0, y1, x0, x1))
    return boxes


def roi_histograms(frame: jnp.ndarray, config: ApexSpottingConfig) -> jnp.ndarray:
    """float32 [R, blocks * B] LBP histograms of one grey frame [H, W], one row per region."""
    height, width = frame.shape
    codes = lbp_codes(gaussian_blur(frame, config.blur * max(height, width)), config.lbp_radius)
    if config.uniform:
        codes = jnp.asarray(_UNIFORM)[codes]
    rows, cols = config.grid
    bins = config.num_bins
    out = []
    for y0, y1, x0, x1 in roi_boxes(config, height, width):
        block = ((np.arange(y1 - y0) * rows // (y1 - y0))[:, None] * cols
                 + (np.arange(x1 - x0) * cols // (x1 - x0))[None, :])
        index = jnp.asarray(block * bins) + codes[y0:y1, x0:x1]
        out.append(jnp.zeros(rows * cols * bins, jnp.float32).at[index.ravel()].add(1.0))
    return jnp.stack(out)


def variation_curve(frames: jnp.ndarray, config: ApexSpottingConfig) -> jnp.ndarray:
    """float32 [T]: sum over the regions of 1 - d(onset, frame t), d the correlation of Eq. (1)."""
    hist = jax.vmap(lambda frame: roi_histograms(frame, config))(frames.astype(jnp.float32))   # [T, R, K]
    onset = hist[:1]
    d = (hist * onset).sum(-1) / jnp.sqrt((hist ** 2).sum(-1) * (onset ** 2).sum(-1))
    return (1.0 - d).sum(-1)


# -------------------------------------------------------------------------------------------- search

def smooth_curve(curve: jnp.ndarray, length, window: int) -> jnp.ndarray:
    """Centred moving average of curve[:length] (the window shrinks at the clip's ends)."""
    if window == 1:
        return curve
    valid = jnp.arange(curve.shape[0]) < length
    kernel = jnp.ones(window, jnp.float32)
    total = jnp.convolve(jnp.where(valid, curve, 0.0), kernel, mode="same")
    count = jnp.convolve(valid.astype(jnp.float32), kernel, mode="same")
    return total / jnp.maximum(count, 1.0)


def peaks(curve: jnp.ndarray, length) -> jnp.ndarray:
    """bool [T]: local maxima of curve[:length], above the previous frame and not below the next
    (the first frame has no predecessor, the last valid frame no successor)."""
    t = jnp.arange(curve.shape[0])
    low = jnp.array([-jnp.inf], curve.dtype)
    previous = jnp.concatenate([low, curve[:-1]])
    following = jnp.where(t + 1 < length, jnp.concatenate([curve[1:], low]), -jnp.inf)
    return (t < length) & (curve > previous) & (curve >= following)


def divide_and_conquer(curve: jnp.ndarray, length, subtract_floor: bool = True) -> jnp.ndarray:
    """int32 apex index on curve[:length]: halve the frame range, keep the half whose peaks sum higher,
    until one peak is left (module docstring)."""
    t = jnp.arange(curve.shape[0])
    valid = t < length
    is_peak = peaks(curve, length)
    floor = jnp.min(jnp.where(valid & (t >= 1), curve, jnp.inf)) if subtract_floor else 0.0
    height = jnp.where(is_peak, curve - floor, 0.0)

    def halve(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) // 2
        left, right = (t >= lo) & (t < mid), (t >= mid) & (t < hi)
        n_left, n_right = (is_peak & left).sum(), (is_peak & right).sum()
        keep_left = (n_right == 0) | ((n_left > 0) & (jnp.where(left, height, 0.0).sum()
                                                      >= jnp.where(right, height, 0.0).sum()))
        done = n_left + n_right <= 1
        return jnp.where(done | keep_left, lo, mid), jnp.where(done | ~keep_left, hi, mid)

    steps = max(1, math.ceil(math.log2(curve.shape[0])))   # enough halvings to reach one frame
    lo, hi = jax.lax.fori_loop(0, steps, halve, (jnp.int32(0), jnp.asarray(length, jnp.int32)))
    # The first frame of the highest value is always a peak, and a half without peaks is never kept.
    return jnp.argmax(jnp.where(is_peak & (t >= lo) & (t < hi), curve, -jnp.inf)).astype(jnp.int32)


def search_apex(curve: jnp.ndarray, length, config: ApexSpottingConfig) -> jnp.ndarray:
    """int32 apex index on a variation curve [T] whose first `length` frames are the clip."""
    curve = smooth_curve(curve, length, config.smooth)
    if config.search == "argmax":
        return jnp.argmax(jnp.where(jnp.arange(curve.shape[0]) < length, curve, -jnp.inf)).astype(jnp.int32)
    return divide_and_conquer(curve, length, config.subtract_floor)


# ------------------------------------------------------------------------------------------------ API

@functools.partial(jax.jit, static_argnames=("method", "config"))
def spot_apexes(frames: jnp.ndarray, length: jnp.ndarray, method: str = "dc_rois",
                config: ApexSpottingConfig = ApexSpottingConfig()) -> jnp.ndarray:
    """int32 [N] apex indices of N padded clips: frames [N, T, H, W] grey (any intensity scale), clip n is
    frames[n, :length[n]] with its onset at frame 0 and its offset at length[n] - 1. Pure and jitted;
    `check_frames` validates the input first."""
    if method == "midpoint":
        return ((jnp.asarray(length) - 1) // 2).astype(jnp.int32)
    return jax.vmap(lambda clip, n: search_apex(variation_curve(clip, config), n, config))(frames, length)


def check_frames(frames, method: str, config: ApexSpottingConfig, batched: bool = False) -> None:
    """Raise ValueError saying what is wrong with a clip [T, H, W] (batched: [N, T, H, W]) before spotting."""
    if method not in METHODS:
        raise ValueError(f"apex spotting method must be one of {METHODS}, got {method!r}")
    shape = tuple(np.shape(frames))
    layout = "[N, T, H, W]" if batched else "[T, H, W]"
    if len(shape) != (4 if batched else 3):
        raise ValueError(f"apex spotting needs grey frames {layout} (convert RGB to grey first), "
                         f"got shape {shape}")
    dtype = np.dtype(frames.dtype) if hasattr(frames, "dtype") else np.asarray(frames).dtype
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise ValueError(f"apex spotting needs real-valued grey frames, got dtype {dtype}")
    needed = 3 if method == "dc_rois" else 1
    if shape[-3] < needed:
        raise ValueError(f"{method} needs a clip of at least {needed} frame(s)"
                         + (" (the onset, a frame after it and the offset)" if needed == 3 else "")
                         + f", got {shape[-3]}")
    if method == "dc_rois":
        roi_boxes(config, shape[-2], shape[-1])


def spot_apex(frames, method: str = "dc_rois", config: ApexSpottingConfig = ApexSpottingConfig()) -> int:
    """Apex index into one clip, frames [T, H, W] grey from its onset (frame 0) to its offset (T - 1)."""
    check_frames(frames, method, config)
    frames = jnp.asarray(frames, jnp.float32)
    return int(spot_apexes(frames[None], jnp.array([frames.shape[0]], jnp.int32), method, config)[0])


def missing_apex_clips(corpus) -> set[str]:
    """Ids of the clips whose builder recorded the midpoint because no apex was annotated."""
    return {fix["clip"] for fix in corpus.metadata.get("fixes", ())
            if str(fix.get("fix", "")).startswith(MISSING_APEX_FIX)}


def spot_corpus_apexes(corpus, method: str = "dc_rois", config: ApexSpottingConfig = ApexSpottingConfig(),
                       which: str = "missing", bucket: int = 16, progress: bool = True) -> np.ndarray:
    """int32 [N] apex frame indices of a frame corpus (`mer_jax.data.corpus.Corpus`), like `corpus.apex`:
    the clips `which` picks are spotted on their onset..offset frames, the others keep their apex.

    which: "missing" (clips whose builder stored the midpoint for want of an annotated apex, see
    `missing_apex_clips`) or "all". Frames are resized to `config.frame_size` (so the regions' LBP blocks
    have the same size in pixels whatever the corpus's resolution) and clips padded to a multiple of
    `bucket` frames, so that a corpus compiles `spot_apexes` for a few lengths only. Use it as `dataclasses.replace(corpus, apex=...)`."""
    from tqdm.auto import tqdm

    if which not in ("missing", "all"):
        raise ValueError(f"which must be 'missing' or 'all', got {which!r}")
    if corpus.kind != "frames":
        raise ValueError(f"{corpus.name} is a {corpus.kind} corpus: apex spotting needs its frames")
    if method not in METHODS:
        raise ValueError(f"apex spotting method must be one of {METHODS}, got {method!r}")
    missing = missing_apex_clips(corpus)
    chosen = [i for i in range(len(corpus)) if which == "all" or corpus.clip[i] in missing]
    apex = np.asarray(corpus.apex, np.int32).copy()
    for i in tqdm(chosen, desc=f"apex spotting ({method}) {corpus.name}", disable=not progress):
        onset, offset = int(corpus.onset[i]), int(corpus.offset[i])
        rgb = corpus.frames(i, range(onset, offset + 1)).astype(np.float32)
        grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)   # ITU-R BT.601, as cv2's RGB2GRAY
        if config.frame_size:
            grey = np.stack([resize_square(frame, config.frame_size) for frame in grey])
        try:
            check_frames(grey, method, config)
        except ValueError as error:
            raise ValueError(f"{corpus.name}: clip {corpus.clip[i]} (onset {onset}, offset {offset}): "
                             f"{error}") from None
        padded = np.zeros((1, -(-len(grey) // bucket) * bucket) + grey.shape[1:], np.float32)
        padded[0, :len(grey)] = grey
        length = jnp.array([len(grey)], jnp.int32)
        apex[i] = onset + int(spot_apexes(jnp.asarray(padded), length, method, config)[0])
    log.info("apex spotting (%s): %d of %d clips of %s spotted", method, len(chosen), len(corpus), corpus.name)
    return apex
