"""SMIC builder (tfds_builders/smic) on fixture archives in SMIC's exact layout: TF-free ArrayRecord
builds, the known quirks (absent s18_sur_03, missing frames of four s3 clips, no apex, non_micro/), the
MEGC2019 ground truth's 164 clips, the raw (aligned) variant and every bad-input case."""
import collections
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import builder_testing
from mer_jax.data import taxonomy
from mer_jax.data.archive import ArchiveError
from mer_jax.data.corpus import load_corpus
from mer_jax.data.synthetic.archives.smic import write_smic
from tfds_builders import smic

GT = "/work/shared/labels/megc2019_combined_3class_gt.csv"


def _build(manual, data_dir, config="hs", **overrides):
    """Build `smic/<config>` (with config fields overridden) into data_dir; returns the builder."""
    return builder_testing.build(smic.Builder, manual, data_dir, config, **overrides)


@pytest.fixture(scope="module")
def hs(tmp_path_factory):
    root = tmp_path_factory.mktemp("smic")
    written = write_smic(root / "manual")
    corpus, builder = builder_testing.load_built("smic/hs", root)
    return written, corpus, builder


def test_one_split_per_subject_and_every_clip(hs):
    written, corpus, builder = hs
    assert written["num_samples"] == 17 and written["absent"] == ["s18_sur_03"]
    assert sorted(builder.info.splits) == [f"subject_smic_{s}" for s in ("s1", "s18", "s2", "s20", "s3")]
    assert sum(builder.info.splits[s].num_examples for s in builder.info.splits) == 17
    assert builder.info.splits["subject_smic_s3"].num_examples == 5
    assert sorted(corpus.clip) == sorted(f"smic/{c['subject']}/{c['clip']}" for c in written["clips"])
    assert not any("_99" in c for c in corpus.clip)   # non_micro/ is not part of the corpus
    assert set(corpus.dataset) == {"smic"} and set(corpus.fps) == {100.0}


def test_labels_from_folder_names(hs):
    written, corpus, _ = hs
    expected = {f"smic/{c['subject']}/{c['clip']}": c["emotion"] for c in written["clips"]}
    for clip, emotion, label in zip(corpus.clip, corpus.emotion, corpus.label_3class):
        assert emotion == expected[clip]
        assert label == taxonomy.MEGC3_CLASSES.index(emotion)
    assert set(corpus.emotion) == {"negative", "positive", "surprise"}
    assert not corpus.aus.any()   # SMIC has no AUs


def test_onset_offset_are_first_and_last_frame_and_apex_is_midpoint(hs):
    written, corpus, builder = hs
    by_clip = {f"smic/{c['subject']}/{c['clip']}": c for c in written["clips"]}
    for i, clip in enumerate(corpus.clip):
        length = by_clip[clip]["last"] - by_clip[clip]["first"] + 1
        assert len(corpus.encoded_frames[i]) == length
        assert (corpus.onset[i], corpus.apex[i], corpus.offset[i]) == (0, (length - 1) // 2, length - 1)
    first = corpus.frames(list(corpus.clip).index("smic/s1/s1_ne_01"), [0])[0]
    on_disk = cv2.cvtColor(cv2.imread(str(by_clip["smic/s1/s1_ne_01"]["folder"] /
                                          f"reg_image{by_clip['smic/s1/s1_ne_01']['first']:06d}.bmp")),
                           cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(first, on_disk)   # BMP stored losslessly (PNG)
    fixes = [f for f in builder.info.metadata["fixes"] if f["clip"] == "smic/s1/s1_ne_01"]
    assert any("no apex annotated" in f["fix"] for f in fixes)


def test_quirks_fixed_and_recorded(hs):
    written, corpus, builder = hs
    metadata = builder.info.metadata
    assert metadata["dataset"] == "smic" and metadata["label_schemes"] == ["megc3"] and not metadata["has_aus"]
    [absent] = metadata["excluded"]
    assert absent["clip"] == "smic/s18/s18_sur_03" and "known quirk" in absent["reason"]
    assert absent["where"].endswith("s18/micro/surprise/s18_sur_03")
    fixes = builder_testing.fixes_by_clip(builder)
    assert set(written["missing"]) == {"s3_po_08", "s3_sur_01", "s3_sur_05", "s3_ne_16"}
    for clip, gone in written["missing"].items():
        notes = fixes[f"smic/s3/{clip}"]
        assert any("known quirk" in n for n in notes) and any("filled with the previous frame" in n for n in notes)
        i = list(corpus.clip).index(f"smic/s3/{clip}")
        c = next(c for c in written["clips"] if c["clip"] == clip)
        filled = gone[0] - c["first"]   # first missing frame = copy of the frame before it
        frames = corpus.frames(i, [filled - 1, filled])
        np.testing.assert_array_equal(frames[0], frames[1])


def test_normal_speed_cameras(tmp_path):
    written = write_smic(tmp_path / "manual", variant="nir")
    corpus = load_corpus("smic/nir", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "manual"))
    assert len(corpus) == written["num_samples"] == 7 and set(corpus.fps) == {25.0}
    assert set(corpus.subject) == {"smic/s1", "smic/s2", "smic/s3"}


def test_megc2019_ground_truth_clips(tmp_path):
    """The composite's fixture asks for the GT's 164 clips in its own spelling (`s01_ne_01`)."""
    rows = [line.split(",") for line in open(GT).read().split() if line.startswith("smic,")]
    samples = [{"subject": s, "clip": c, "emotion": e} for _, s, c, e in rows]
    written = write_smic(tmp_path, samples=samples, num_frames=3)
    assert len(rows) == 164 and written["num_samples"] == 163 and written["absent"] == ["s18_sur_03"]
    records, excluded = smic.read_records(tmp_path, "hs")
    assert len(records) == 163 and [e["clip"] for e in excluded] == ["smic/s18/s18_sur_03"]
    assert len({r.subject for r in records}) == 16
    counts = collections.Counter(r.emotion for r in records)
    assert counts == {"negative": 70, "positive": 51, "surprise": 42}
    assert {r.clip for r in records if r.fill_missing} == {"s3_po_08", "s3_sur_01", "s3_sur_05", "s3_ne_16"}


_TFDS_TEST_CASE = """
import tensorflow_datasets as tfds
from tfds_builders import smic


class SmicTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = smic.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["hs"]
    EXAMPLE_DIR = {example_dir!r}
    SPLITS = {{"subject_smic_s1": 4, "subject_smic_s2": 4, "subject_smic_s3": 5, "subject_smic_s18": 2,
              "subject_smic_s20": 2}}
    SKIP_CHECKSUMS = True
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_tfds_dataset_builder_test_case(tmp_path):
    """TFDS's own DatasetBuilderTestCase on the default fixture (TensorFlow path, TFRecord). Run in a
    subprocess so that TensorFlow is never imported into this test session."""
    write_smic(tmp_path / "manual")
    (tmp_path / "test_smic_tfds.py").write_text(_TFDS_TEST_CASE.format(example_dir=str(tmp_path / "manual")))
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_smic_tfds.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


# ------------------------------------------------------------------------------------------ raw frames

def test_raw_variant_aligns_faces(tmp_path):
    write_smic(tmp_path / "manual", variant="hs_raw",
               samples=[{"subject": "s1", "clip": "s1_ne_01"}, {"subject": "s2", "clip": "s2_sur_01"}])
    builder = _build(tmp_path / "manual", tmp_path / "data", "hs_raw", image_size=48)
    corpus_frames = builder.as_data_source()["subject_smic_s1"][0]["frames"]
    assert np.asarray(corpus_frames).shape == (5, 48, 48, 3)
    assert sum(builder.info.metadata["alignment"].values()) == 2


def test_raw_variant_without_a_face(tmp_path):
    written = write_smic(tmp_path / "manual", variant="hs_raw",
                         samples=[{"subject": "s1", "clip": "s1_ne_01"}, {"subject": "s1", "clip": "s1_sur_01"}])
    folder = written["clips"][1]["folder"]
    for path in folder.iterdir():   # a blank onset frame: no face to find
        cv2.imwrite(str(path), np.full((120, 160, 3), 90, np.uint8))
    with pytest.raises(ArchiveError, match=r"smic: .*s1_sur_01.*no face found"):
        _build(tmp_path / "manual", tmp_path / "data", "hs_raw", image_size=32)
    builder = _build(tmp_path / "manual", tmp_path / "data2", "hs_raw", image_size=32, skip_bad_samples=True)
    [excluded] = builder.info.metadata["excluded"]
    assert excluded["clip"] == "smic/s1/s1_sur_01" and "no face found" in excluded["reason"]


# ------------------------------------------------------------------------------------------- bad input

SMALL = [{"subject": "s1", "clip": "s1_ne_01"}, {"subject": "s1", "clip": "s1_po_01"},
         {"subject": "s1", "clip": "s1_sur_01"}, {"subject": "s3", "clip": "s3_po_08"}]


def test_missing_manual_dir_prints_instructions(tmp_path):
    with pytest.raises(AssertionError, match="SMIC_all_cropped/HS/s1/micro/negative"):
        _build(tmp_path / "absent", tmp_path / "data")


def test_archive_without_the_variant_folder(tmp_path):
    write_smic(tmp_path, samples=SMALL[:1], variant="vis")
    with pytest.raises(ArchiveError, match=r"smic: no HS frames .*SMIC_all_cropped/HS"):
        smic.read_records(tmp_path, "hs")


def test_unknown_emotion_folder(tmp_path):
    written = write_smic(tmp_path / "manual", samples=SMALL)
    shutil.copytree(written["clips"][0]["folder"], written["folder"] / "s1/micro/happy/s1_ha_01")
    with pytest.raises(ArchiveError, match=r"smic: emotion folder SMIC_all_cropped/HS/s1/micro/happy: "
                                           r"unknown emotion 'happy'"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    [excluded] = builder.info.metadata["excluded"]
    assert "unknown emotion 'happy'" in excluded["reason"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 4


def test_clip_folder_in_the_wrong_emotion_folder(tmp_path):
    written = write_smic(tmp_path, samples=SMALL)
    shutil.move(written["clips"][0]["folder"], written["folder"] / "s1/micro/positive/s1_ne_01")
    with pytest.raises(ArchiveError, match=r"s1/micro/positive/s1_ne_01: clip folder 's1_ne_01' does not "
                                           r"match its folders"):
        smic.read_records(tmp_path, "hs")


def test_missing_frames_outside_the_quirk_table(tmp_path):
    written = write_smic(tmp_path / "manual", samples=SMALL)
    clip = written["clips"][0]
    (clip["folder"] / f"reg_image{clip['first'] + 2:06d}.bmp").unlink()
    with pytest.raises(ArchiveError, match=rf"smic: .*s1_ne_01.*frames {clip['first'] + 2} of onset..offset "
                                           rf"{clip['first']}..{clip['last']} are missing"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    assert [e["clip"] for e in builder.info.metadata["excluded"]] == ["smic/s1/s1_ne_01"]


def test_more_frames_missing_than_the_quirk_table_knows(tmp_path):
    written = write_smic(tmp_path / "manual", samples=SMALL)
    clip = written["clips"][3]   # s3_po_08: 2 frames missing by the quirk table, a third one here
    (clip["folder"] / f"reg_image{clip['first'] + 3:06d}.bmp").unlink()
    with pytest.raises(ArchiveError, match=r"s3_po_08.*are missing"):
        _build(tmp_path / "manual", tmp_path / "data")


def test_unreadable_and_empty_clips(tmp_path):
    written = write_smic(tmp_path / "manual", samples=SMALL)
    bad = written["clips"][1]["folder"] / f"reg_image{written['clips'][1]['first'] + 1:06d}.bmp"
    bad.write_bytes(b"not a bitmap")
    with pytest.raises(ArchiveError, match=rf"smic: cannot read image {bad}"):
        _build(tmp_path / "manual", tmp_path / "data")
    for path in written["clips"][0]["folder"].iterdir():
        path.unlink()
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    reasons = {e["clip"]: e["reason"] for e in builder.info.metadata["excluded"]}
    assert "holds no images" in reasons["smic/s1/s1_ne_01"] and "cannot read image" in reasons["smic/s1/s1_po_01"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 2


def test_missing_apexes_are_spotted_when_the_config_asks(tmp_path):
    import ml_collections

    from mer_jax import experiment
    from mer_jax.features.apex_spotting import spot_corpus_apexes

    write_smic(tmp_path / "manual")
    # the fixture's 32 x 32 crops are too small for the spotting regions' 5 x 5 LBP blocks: build at 64
    corpus = load_corpus("smic/hs", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "manual"),
                         builder_options={"image_size": 64})
    config = ml_collections.ConfigDict({"features": {"missing_apex": "dc_rois"}, "train": {"progress": False}})
    spotted = experiment.spot_missing_apexes(config, corpus)
    np.testing.assert_array_equal(spotted.apex, spot_corpus_apexes(corpus, "dc_rois", progress=False))
    assert np.all((corpus.onset <= spotted.apex) & (spotted.apex <= corpus.offset))
    assert (spotted.apex != corpus.apex).any()   # SMIC annotates no apex: every clip is spotted
    assert spotted.identity()["fingerprint"] != corpus.identity()["fingerprint"]   # features are recomputed
    config.features.missing_apex = "midpoint"
    assert experiment.spot_missing_apexes(config, corpus) is corpus
    config.features.missing_apex = "peak"
    with pytest.raises(ValueError, match="missing_apex must be one of"):
        experiment.spot_missing_apexes(config, corpus)
