"""Apex spotting (D&C-RoIs, DFR-Net section 3.1.1, and the midpoint): building blocks against numpy
references and hand-worked curves, accuracy on synthetic clips with a known apex, a corpus, bad input."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.data.corpus import Corpus
from mer_jax.data.synthetic.apex_clips import ApexClipConfig, apex_clips, intensity_profile
from mer_jax.features import apex_spotting as aps

CLIPS = ApexClipConfig(seed=0)
NUM_CLIPS = 16


@pytest.fixture(scope="module")
def clips():
    return apex_clips(CLIPS, NUM_CLIPS)


@pytest.fixture(scope="module")
def spotted(clips):
    """D&C-RoIs apexes of all clips, padded to one length and spotted in one batch."""
    return np.asarray(aps.spot_apexes(*_padded(clips), "dc_rois", aps.ApexSpottingConfig()))


def _padded(clips):
    size = max(len(c.frames) for c in clips)
    frames = np.zeros((len(clips), size) + clips[0].frames.shape[1:], np.float32)
    for i, clip in enumerate(clips):
        frames[i, :len(clip.frames)] = clip.frames
    return jnp.asarray(frames), jnp.array([len(c.frames) for c in clips], jnp.int32)


def _lbp_reference(image: np.ndarray, radius: int) -> np.ndarray:
    height, width = image.shape
    codes = np.zeros((height - 2 * radius, width - 2 * radius), np.int32)
    for y in range(radius, height - radius):
        for x in range(radius, width - radius):
            for bit, (dy, dx) in enumerate(aps._NEIGHBOURS):
                if image[y + dy * radius, x + dx * radius] >= image[y, x]:
                    codes[y - radius, x - radius] |= 1 << bit
    return codes


@pytest.mark.parametrize("radius", [1, 2])
def test_lbp_codes_match_a_pixel_loop(radius):
    image = np.random.default_rng(radius).integers(0, 6, (9, 11)).astype(np.float32)  # ties included
    np.testing.assert_array_equal(np.asarray(aps.lbp_codes(jnp.asarray(image), radius)),
                                  _lbp_reference(image, radius))


def test_uniform_table_has_ahonens_59_labels():
    table = aps.uniform_table()
    assert sorted(set(table.tolist())) == list(range(59))
    assert (table == 58).sum() == 256 - 58                  # 58 uniform codes, the rest share label 58
    assert table[0] == 0 and table[255] != 58 and table[0b01010101] == 58


def test_roi_histograms_count_the_codes_of_each_block():
    config = aps.ApexSpottingConfig(grid=(2, 2), blur=0.0, uniform=False)
    frame = np.random.default_rng(3).random((40, 40)).astype(np.float32)
    hist = np.asarray(jax.jit(aps.roi_histograms, static_argnums=1)(jnp.asarray(frame), config)).reshape(3, 4, 256)
    codes = _lbp_reference(frame, 1)
    for r, (y0, y1, x0, x1) in enumerate(aps.roi_boxes(config, 40, 40)):
        region = codes[y0:y1, x0:x1]
        top, left = (y1 - y0 + 1) // 2, (x1 - x0 + 1) // 2   # block b holds rows/cols with index*2//size == b
        blocks = [region[:top, :left], region[:top, left:], region[top:, :left], region[top:, left:]]
        for b, block in enumerate(blocks):
            np.testing.assert_array_equal(hist[r, b], np.bincount(block.ravel(), minlength=256))


def test_variation_is_zero_for_the_onset_and_for_gain_changes():
    frame = np.random.default_rng(4).random((48, 48)).astype(np.float32)
    other = np.random.default_rng(5).random((48, 48)).astype(np.float32)
    variation = jax.jit(aps.variation_curve, static_argnums=1)
    curve = np.asarray(variation(jnp.asarray(np.stack([frame, 2 * frame, other])), aps.ApexSpottingConfig()))
    # LBP compares pixels, so doubling every intensity (exact in floats) changes no code: d = 1 in Eq. (1).
    np.testing.assert_allclose(curve[:2], 0.0, atol=1e-6)
    assert curve[2] > 0.1


def test_divide_and_conquer_on_hand_worked_curves():
    dc = jax.jit(aps.divide_and_conquer, static_argnums=2)
    # Peaks at 2 and 5; the left half's peak sums higher -> 2.
    assert int(dc(jnp.array([0, 1, 5, 2, 1, 1.5, 1, 0.5]), 8)) == 2
    # Peaks 9 (frame 2), 6 (4), 6 (6); floor (lowest after the onset) 5. Heights 4 | 1 + 1: left -> 2.
    curve = jnp.array([0, 5, 9, 5, 6, 5, 6, 5.0])
    assert int(dc(curve, 8)) == 2
    # Raw sums 9 | 12 keep the right half; its halves tie (6 | 6) and the earlier one wins -> 4.
    assert int(dc(curve, 8, False)) == 4
    # Frames past `length` (padding) are ignored; a rising clip ends in its apex; a flat one gives the onset.
    assert int(dc(jnp.concatenate([curve, jnp.array([99.0, 99.0])]), 8)) == 2
    assert int(dc(jnp.arange(6.0), 6)) == 5
    assert int(dc(jnp.zeros(6), 6)) == 0


def test_intensity_profile_peaks_at_the_apex():
    profile = intensity_profile(20, 6, 0.2)
    assert int(np.argmax(profile)) == 6 and profile[0] == 0 and profile[-1] == pytest.approx(0.2)


def test_dc_rois_finds_the_apex_of_synthetic_clips(clips, spotted):
    length = np.array([len(c.frames) for c in clips])
    truth = np.array([c.apex for c in clips])
    mae = float(np.abs(spotted - truth).mean())
    midpoint_mae = float(np.abs((length - 1) // 2 - truth).mean())
    print(f"D&C-RoIs apex MAE on {len(clips)} synthetic clips: {mae:.2f} frames (midpoint: {midpoint_mae:.2f})")
    assert len(set(truth.tolist())) > 8 and (truth != (length - 1) // 2).sum() > 12   # apexes off the middle
    assert mae <= 2.0


def test_midpoint_is_the_middle_of_onset_and_offset():
    assert aps.spot_apex(np.zeros((7, 8, 8)), "midpoint") == 3
    assert aps.spot_apex(np.zeros((6, 8, 8)), "midpoint") == 2
    assert aps.spot_apex(np.zeros((1, 8, 8)), "midpoint") == 0
    frames = jnp.zeros((3, 10, 4, 4))
    np.testing.assert_array_equal(aps.spot_apexes(frames, jnp.array([10, 5, 2]), "midpoint"), [4, 2, 0])


def _corpus(clips, missing: list[int]) -> Corpus:
    import cv2

    n = len(clips)
    ids = np.array([f"synthetic/s01/c{i}" for i in range(n)])
    encoded = [[cv2.imencode(".png", np.repeat(f[..., None], 3, -1))[1].tobytes() for f in c.frames]
               for c in clips]
    lengths = np.array([len(c.frames) for c in clips], np.int32)
    return Corpus(name="apex_test", version="0", subject=np.array(["synthetic/s01"] * n),
                  dataset=np.array(["synthetic"] * n), clip=ids, emotion=np.array(["others"] * n), label_3class=np.full(n, -1, np.int32),
                  aus=np.zeros((n, 18), np.uint8), onset=np.zeros(n, np.int32), apex=(lengths - 1) // 2,
                  offset=lengths - 1, fps=np.full(n, 200.0), encoded_frames=encoded,
                  metadata={"fixes": [{"clip": ids[i], "fix": "no apex annotated: apex = (onset + offset) // 2"}
                                      for i in missing]})


def test_spot_corpus_apexes_fills_only_the_missing_apexes(clips, spotted):
    chosen = [i for i, c in enumerate(clips) if len(c.frames) <= 32][:3]
    corpus = _corpus([clips[i] for i in chosen], missing=[0, 2])
    assert aps.missing_apex_clips(corpus) == {corpus.clip[0], corpus.clip[2]}
    apex = aps.spot_corpus_apexes(corpus, bucket=32, progress=False)
    assert apex[1] == corpus.apex[1]                                       # annotated: kept
    # Decoded from PNG, padded to 32 frames one by one: the same apexes as the batch padded to 40.
    assert apex[0] == spotted[chosen[0]] and apex[2] == spotted[chosen[2]]
    midpoints = aps.spot_corpus_apexes(corpus, "midpoint", which="all", progress=False)
    np.testing.assert_array_equal(midpoints, corpus.apex)
    replaced = dataclasses.replace(corpus, apex=apex)
    assert (replaced.onset <= replaced.apex).all() and (replaced.apex <= replaced.offset).all()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"grey frames \[T, H, W\].*\(4, 64, 64, 3\)"):
        aps.spot_apex(np.zeros((4, 64, 64, 3)))
    with pytest.raises(ValueError, match=r"grey frames \[T, H, W\].*\(64, 64\)"):
        aps.spot_apex(np.zeros((64, 64)))
    with pytest.raises(ValueError, match="at least 3 frame.*got 2"):
        aps.spot_apex(np.zeros((2, 64, 64)))
    with pytest.raises(ValueError, match="too small for the region 'eye_brow_left'"):
        aps.spot_apex(np.zeros((5, 12, 12)))
    with pytest.raises(ValueError, match="method must be one of"):
        aps.spot_apex(np.zeros((5, 64, 64)), "centroid")
    with pytest.raises(ValueError, match="real-valued"):
        aps.spot_apex(np.zeros((5, 64, 64), bool))
    with pytest.raises(ValueError, match="smooth must be an odd window"):
        aps.ApexSpottingConfig(smooth=2)
    with pytest.raises(ValueError, match="x0 < x1"):
        aps.ApexSpottingConfig(rois=(aps.RoI("mouth", 0.7, 0.6, 0.3, 0.8),))
    with pytest.raises(ValueError, match="num_frames"):
        ApexClipConfig(num_frames=(2, 10))
