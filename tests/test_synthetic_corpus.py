"""The synthetic micro-expression corpus and its TFDS builder (no TensorFlow, no network)."""
import collections
import dataclasses

import cv2
import numpy as np
import pytest

from mer_jax.data import schema, taxonomy
from mer_jax.data.synthetic import DEFAULT, SMOKE, SyntheticConfig, generate_corpus, generate_sample, generate_subject
from mer_jax.data.synthetic import action_units, clips
from mer_jax.data.synthetic.config import DEFAULT_CLASS_WEIGHTS
from mer_jax.features.flow_tvl1 import tvl1_flow

# No head motion, lighting change, noise or blinks: frames differ from the neutral face only by the AUs.
QUIET = dataclasses.replace(DEFAULT, head_motion_px=0.0, head_rotation_deg=0.0, illumination_drift=0.0,
                            noise_std=(0.0, 0.0), blink_prob=0.0)
# Many cheap samples for label statistics.
TINY = dataclasses.replace(DEFAULT, num_subjects=20, samples_per_subject=40, resolution=32, num_frames=8)


@pytest.mark.parametrize("field, value", [
    ("num_subjects", 0), ("resolution", 16), ("num_frames", 4), ("fps", 0.0), ("seed", -1),
    ("amplitude_px", (3.0, 0.3)), ("noise_std", (-1.0, 1.0)), ("au_keep_prob", 1.5), ("blink_prob", -0.1),
    ("head_motion_px", -1.0), ("class_weights", {"positive": 1.0}), ("class_weights", {"others": 0.0}),
])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**{field: value})


def test_every_au_of_the_vocabulary_has_a_field():
    assert tuple(sorted(action_units.AU_POINTS)) == taxonomy.AU_VOCAB


def test_sample_fields_follow_the_schema():
    sample = generate_sample(SMOKE, 1, 2)
    t, r = SMOKE.num_frames, SMOKE.resolution
    assert sample["frames"].shape == (t, r, r, 3) and sample["frames"].dtype == np.uint8
    assert sample["depth"].shape == (t, r, r, 1) and sample["depth"].dtype == np.uint16
    assert 0 <= sample["onset"] < sample["apex"] < sample["offset"] < t
    assert sample["subject"] == "synthetic/s02" and sample["dataset"] == "synthetic"
    assert sample["clip"] == "synthetic/s02/c003"
    assert sample["emotion"] in taxonomy.EMOTIONS
    assert sample["label_3class"] == taxonomy.megc3_label(sample["emotion"])
    assert sample["aus"].dtype == np.uint8 and sample["aus"].shape == (len(taxonomy.AU_VOCAB),)
    assert sample["fps"] == 200.0


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_samples_are_deterministic_and_subsets_consistent():
    _assert_same(generate_sample(SMOKE, 3, 4), generate_sample(SMOKE, 3, 4))
    _assert_same(generate_sample(SMOKE, 3, 4), list(generate_subject(SMOKE, 3))[4])
    other_seed = generate_sample(dataclasses.replace(SMOKE, seed=1), 3, 4)
    assert not np.array_equal(other_seed["frames"], generate_sample(SMOKE, 3, 4)["frames"])


def test_subjects_have_different_identities():
    faces = [clips.subject_face(SMOKE, i) for i in range(SMOKE.num_subjects)]
    identities = {face.identity for face in faces}
    assert len(identities) == SMOKE.num_subjects
    for first, second in zip(faces, faces[1:]):
        assert np.abs(first.rgb.astype(int) - second.rgb).mean() > 10
    np.testing.assert_array_equal(faces[2].rgb, clips.subject_face(SMOKE, 2).rgb)


@pytest.mark.parametrize("config", [DEFAULT, SMOKE], ids=["128px", "64px"])
def test_apex_displacement_is_micro_sized(config):
    face = clips.subject_face(config, 0)
    rng = np.random.default_rng(0)
    peaks = [np.linalg.norm(clips.plan_clip(config, face, rng).displacement, axis=-1).max() for _ in range(40)]
    low, high = (v * config.resolution / 128 for v in config.amplitude_px)
    assert low - 1e-4 <= min(peaks) and max(peaks) <= high + 1e-4
    assert max(peaks) - min(peaks) > 0.3 * (high - low)  # random intensity per sample


def test_motion_is_the_au_field_and_is_localised():
    """Without nuisances the onset frame is the neutral face, still skin stays still, and TV-L1
    flow onset -> apex recovers the direction of the AU displacement where the skin moves."""
    config = dataclasses.replace(QUIET, amplitude_px=(2.5, 2.5))
    face = clips.subject_face(config, 0)
    for seed in range(3):
        plan = clips.plan_clip(config, face, np.random.default_rng(seed))
        frames, _ = clips.render_clip(face, plan)
        np.testing.assert_array_equal(frames[plan.onset], face.rgb)
        magnitude = np.linalg.norm(plan.displacement, axis=-1)
        still, moving = magnitude < 1e-3, magnitude > 0.5 * magnitude.max()
        assert 0.02 < still.mean() and np.array_equal(frames[plan.apex][still], face.rgb[still])
        grey = [cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY) for t in (plan.onset, plan.apex)]
        flow = tvl1_flow(*grey)
        cosine = (flow[moving] * plan.displacement[moving]).sum(-1) / (
            np.linalg.norm(flow[moving], axis=-1) * magnitude[moving] + 1e-6)
        assert np.median(cosine) > 0.8, plan.emotion
        assert 0.3 < np.linalg.norm(flow[moving], axis=-1).mean() / magnitude[moving].mean() < 1.5
        assert np.linalg.norm(flow[still], axis=-1).mean() < 0.1


def test_intensity_rises_to_the_apex_and_decays():
    plan = clips.plan_clip(SMOKE, clips.subject_face(SMOKE, 0), np.random.default_rng(1))
    curve = plan.intensity
    assert curve[plan.onset] == 0 and curve[plan.apex] == 1 and curve[plan.offset] < 1e-6
    assert np.all(np.diff(curve[plan.onset:plan.apex + 1]) > 0)
    assert np.all(np.diff(curve[plan.apex:plan.offset + 1]) < 0)


def test_aus_follow_the_emotion_prototype():
    config = dataclasses.replace(TINY, num_subjects=4)
    for sample in generate_corpus(config):
        aus = {au for au, on in zip(taxonomy.AU_VOCAB, sample["aus"]) if on}
        if sample["emotion"] == "others":
            assert 1 <= len(aus) <= 2
            assert not any(aus <= {a.au for a in action_units.parse_code(code)} for code in clips.PROTOTYPES.values())
        else:
            prototype = {a.au for a in action_units.parse_code(clips.PROTOTYPES[sample["emotion"]])}
            assert aus & prototype and len(aus - prototype) <= 1, (sample["emotion"], aus)


def test_full_prototypes_without_dropout_or_distractors():
    config = dataclasses.replace(TINY, num_subjects=2, au_keep_prob=1.0, distractor_prob=0.0)
    seen = set()
    for sample in generate_corpus(config):
        if sample["emotion"] != "others":
            expected = {a.au for a in action_units.parse_code(clips.PROTOTYPES[sample["emotion"]])}
            assert sample["aus"].tolist() == taxonomy.au_multi_hot(expected)
            seen.add(sample["emotion"])
    assert len(seen) >= 6
    assert [(a.au, a.side) for a in action_units.parse_code(clips.PROTOTYPES["contempt"])] == [(12, "R"), (14, "R")]


def test_unilateral_au_moves_one_side_only():
    face = clips.subject_face(DEFAULT, 0)
    marks, unit = face.identity.landmarks(DEFAULT.resolution)
    field = action_units.au_field(action_units.Activation(12, "R"), marks, unit, DEFAULT.resolution)
    magnitude = np.linalg.norm(field, axis=-1)
    midline = int(round(marks["mouth"][0]))
    assert magnitude[:, :midline].max() == pytest.approx(1.0) and magnitude[:, midline + 8:].max() < 0.05
    corner = np.round(marks["mouth_corner_r"]).astype(int)
    dx, dy = field[corner[1], corner[0]]
    assert dx < 0 and dy < 0  # subject's right lip corner (image left) moves out and up


def test_labels_are_imbalanced_like_real_corpora():
    counts = collections.Counter(s["emotion"] for s in generate_corpus(TINY))
    total = sum(counts.values())
    for emotion, weight in DEFAULT_CLASS_WEIGHTS.items():
        assert abs(counts[emotion] / total - weight) < 0.05, emotion
    megc = collections.Counter(taxonomy.megc3_label(e) for e in counts.elements())
    assert megc[0] > megc[1] > megc[2] > 0  # negative > positive > surprise


def test_depth_is_a_face_surface_that_warps_with_the_frames():
    config = dataclasses.replace(QUIET, amplitude_px=(3.0, 3.0))
    face = clips.subject_face(config, 0)
    identity = face.identity
    depth = face.depth.astype(float)
    assert depth[0, 0] == pytest.approx(identity.background_mm, abs=1)
    nose = np.round(identity.landmarks(config.resolution)[0]["nose_tip"]).astype(int)
    assert depth[nose[1], nose[0]] < identity.distance_mm < identity.background_mm
    plan = clips.plan_clip(config, face, np.random.default_rng(2))
    _, depths = clips.render_clip(face, plan)
    np.testing.assert_array_equal(depths[plan.onset, ..., 0], face.depth)
    moved = depths[plan.apex, ..., 0] != face.depth
    still = np.linalg.norm(plan.displacement, axis=-1) < 1e-3
    assert moved.any() and not (moved & still).any()


def test_tfds_builder_builds_array_record_and_reads_back(tmp_path):
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401  (registers synthetic_me)

    builder = tfds.builder("synthetic_me/smoke", data_dir=str(tmp_path), file_format="array_record")
    builder.download_and_prepare(file_format="array_record")
    assert builder.version == "1.0.0"
    assert set(builder.info.features.keys()) == set(schema.FIELDS) | {"depth"}
    sources = tfds.data_source("synthetic_me/smoke", data_dir=str(tmp_path))
    expected_splits = {schema.subject_split_name(f"synthetic/s{i + 1:02d}") for i in range(SMOKE.num_subjects)}
    assert set(sources) == expected_splits
    assert all(len(sources[split]) == SMOKE.samples_per_subject for split in expected_splits)
    stored = {sources["subject_synthetic_s02"][i]["clip"].decode(): sources["subject_synthetic_s02"][i]
              for i in range(SMOKE.samples_per_subject)}
    assert sorted(stored) == [f"synthetic/s02/c{k:03d}" for k in range(1, SMOKE.samples_per_subject + 1)]
    for sample_index in (0, 7):
        sample = generate_sample(SMOKE, 1, sample_index)
        example = stored[sample["clip"]]
        np.testing.assert_array_equal(np.stack(example["frames"]), sample["frames"])
        np.testing.assert_array_equal(np.stack(example["depth"]), sample["depth"])
        np.testing.assert_array_equal(example["aus"], sample["aus"])
        for key in ("onset", "apex", "offset", "label_3class"):
            assert int(example[key]) == sample[key], key
        for key in ("subject", "dataset", "clip", "emotion"):
            assert example[key].decode() == sample[key], key
        assert float(example["fps"]) == sample["fps"]
