"""MMEW builder (tfds_builders/mmew) on fixture archives in MMEW's exact layout: a TF-free ArrayRecord
build of the 160-row default archive (others in `repression/`, unpadded frame numbers, meb's 16 apex /
offset fixes), the subject-first layout of the official page, the `_v2` annotation name, every
bad-input case, and a TFDS DatasetBuilderTestCase when TensorFlow is installed."""
import collections
import importlib.util
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import builder_testing
from mer_jax.data import taxonomy
from mer_jax.data.archive import ArchiveError, frame_number
from mer_jax.data.synthetic.archives.mmew import MEB_FIXES, write_mmew
from tfds_builders import mmew


def _build(manual, data_dir, config="default", **overrides):
    """Build `mmew/<config>` (with config fields overridden) into data_dir; returns the builder."""
    return builder_testing.build(mmew.Builder, manual, data_dir, config, **overrides)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmew")
    written = write_mmew(root / "manual")
    corpus, builder = builder_testing.load_built("mmew/default", root)
    return written, corpus, builder


def test_one_split_per_subject_and_every_row(full):
    written, corpus, builder = full
    assert written["num_samples"] == len(corpus) == 160
    assert sorted(builder.info.splits) == [f"subject_mmew_S{s:02d}" for s in range(1, 31)]
    per_subject = collections.Counter(s["subject"] for s in written["samples"])
    for subject, n in per_subject.items():
        assert builder.info.splits[f"subject_mmew_{subject}"].num_examples == n
    assert sorted(corpus.clip) == sorted(s["clip_id"] for s in written["samples"])
    assert set(corpus.dataset) == {"mmew"} and set(corpus.fps) == {90.0}
    assert builder.info.metadata["excluded"] == []
    assert not any("Macro_Expression" in str(s["folder"]) for s in written["samples"])


def test_labels_and_aus(full):
    written, corpus, builder = full
    by_clip = {s["clip_id"]: s for s in written["samples"]}
    for i, clip in enumerate(corpus.clip):
        assert corpus.emotion[i] == by_clip[clip]["emotion"]
        assert corpus.aus[i].tolist() == by_clip[clip]["aus"], clip
    assert collections.Counter(corpus.emotion.tolist()) == {
        "surprise": 47, "disgust": 38, "others": 36, "happiness": 19, "fear": 9, "sadness": 7, "anger": 4}
    assert collections.Counter(corpus.labels("megc3").tolist()) == {0: 38 + 9 + 7 + 4, 1: 19, 2: 47, -1: 36}
    assert (corpus.labels("mmew_4") >= 0).sum() == 47 + 38 + 36 + 19
    assert (corpus.labels("mmew_6") >= 0).sum() == 160 - 36
    assert (corpus.labels("mmew_7") >= 0).all()
    metadata = builder.info.metadata
    assert metadata["label_schemes"] == ["megc3", "mmew_4", "mmew_6", "mmew_7"] and metadata["has_aus"]
    assert taxonomy.LABEL_SCHEMES["mmew_6"] == ("happiness", "surprise", "disgust", "fear", "sadness", "anger")


def test_key_frames_and_numeric_frame_order(full):
    written, corpus, _ = full
    by_clip = {s["clip_id"]: s for s in written["samples"]}
    for i, clip in enumerate(corpus.clip):
        s = by_clip[clip]
        assert len(corpus.encoded_frames[i]) == s["num_frames"], clip
        assert (corpus.onset[i], corpus.apex[i], corpus.offset[i]) == (0, s["apex"] - 1, s["num_frames"] - 1), clip
    longest = max(written["samples"], key=lambda s: s["num_frames"])   # 1.jpg .. 108.jpg
    assert longest["num_frames"] == 108
    i = list(corpus.clip).index(longest["clip_id"])
    on_disk = [p.read_bytes() for p in sorted(longest["folder"].iterdir(), key=frame_number)]
    assert list(corpus.encoded_frames[i]) == on_disk   # JPEG bytes unchanged, 2.jpg before 10.jpg


def test_quirks_fixed_where_the_row_shows_them(full):
    written, corpus, builder = full
    fixes = builder_testing.fixes_by_clip(builder)
    rows = written["samples"]
    assert {rows[r]["clip_id"] for r in MEB_FIXES} == {s["clip_id"] for s in rows if s["fixed"]}
    for r, (apex, offset) in MEB_FIXES.items():
        assert any(f"-> {apex}, {offset} (meb: incorrect apex and offset" in f for f in fixes[rows[r]["clip_id"]])
        i = list(corpus.clip).index(rows[r]["clip_id"])
        assert (corpus.apex[i], corpus.offset[i]) == (apex - 1, offset - 1)
    assert any("row 35)" in f for f in fixes[rows[33]["clip_id"]])   # data row 33 = spreadsheet row 35
    # Every `others` clip was found in the `repression` folder, and that is recorded.
    others = [s for s in rows if s["emotion"] == "others"]
    assert all(s["folder"].parent.name == "repression" for s in others)
    for s in others:
        assert any("found in the folder 'repression'" in f for f in fixes[s["clip_id"]])
    unexpected = set(fixes) - {s["clip_id"] for s in others} - {rows[r]["clip_id"] for r in MEB_FIXES}
    assert not unexpected


def test_fix_rows_with_consistent_content_are_left_alone(tmp_path):
    samples = [{"subject": 1, "clip": f"S01-02-{k:03d}", "emotion": "surprise"} for k in range(1, 37)]
    write_mmew(tmp_path, samples=samples, quirks=False)
    records, excluded = mmew.read_records(tmp_path, "")
    assert len(records) == 36 and not excluded and not any(r.fixes for r in records)
    assert (records[33].apex, records[33].offset) == (3, 4)   # not meb's 40, 75


@pytest.mark.parametrize("others_folder", ["others", "repression"])
def test_subject_first_layout_and_v2_annotation(tmp_path, others_folder):
    samples = [{"subject": 3, "clip": "S03-01-002", "emotion": "happiness"},
               {"subject": "S03", "clip": "S03-04-001", "emotion": "others"},
               {"subject": "12", "clip": "S12-05-001", "emotion": "Fear", "apex": None}]
    written = write_mmew(tmp_path / "manual", samples=samples, layout="subject", others_folder=others_folder,
                         annotation="MMEW_Micro_Exp_v2.xlsx")
    assert (written["frames_root"] / "S03" / "happiness" / "S03-01-002" / "1.jpg").exists()
    records, excluded = mmew.read_records(tmp_path / "manual", "")
    assert not excluded
    assert [(r.subject, r.clip, r.emotion) for r in records] == [
        ("S03", "S03-01-002", "happiness"), ("S03", "S03-04-001", "others"), ("S12", "S12-05-001", "fear")]
    assert [r.folder for r in records] == [s["folder"] for s in written["samples"]]
    assert bool(records[1].fixes) == (others_folder == "repression")
    assert records[2].apex is None   # blank apex: the builder's midpoint rule
    builder = _build(tmp_path / "manual", tmp_path / "data")
    assert sorted(builder.info.splits) == ["subject_mmew_S03", "subject_mmew_S12"]
    fixes = builder_testing.fixes_by_clip(builder)
    assert any("no apex annotated" in f for f in fixes["mmew/S12/S12-05-001"])


def test_resized_config(tmp_path):
    write_mmew(tmp_path / "manual", samples=SMALL[:2])
    builder = _build(tmp_path / "manual", tmp_path / "data", "resized_224", image_size=48)
    frames = builder.as_data_source()["subject_mmew_S01"][0]["frames"]
    assert np.asarray(frames).shape == (4, 48, 48, 3)


# ------------------------------------------------------------------------------------------- bad input

SMALL = [{"subject": 1, "clip": "S01-01-001", "emotion": "happiness"},
         {"subject": 1, "clip": "S01-03-001", "emotion": "disgust"},
         {"subject": 2, "clip": "S02-02-001", "emotion": "surprise"},
         {"subject": 2, "clip": "S02-04-001", "emotion": "others"}]


def test_missing_manual_dir_prints_instructions(tmp_path):
    with pytest.raises(AssertionError, match=r"MMEW/Micro_Expression/happiness/S01-01-001/1\.jpg"):
        _build(tmp_path / "absent", tmp_path / "data")


def test_no_annotation_file(tmp_path):
    written = write_mmew(tmp_path, samples=SMALL)
    written["annotation"].unlink()
    with pytest.raises(ArchiveError, match=r"mmew: no MMEW annotation file under .*MMEW_Micro_Exp\.xlsx"):
        mmew.read_records(tmp_path, "")


def test_unknown_emotion(tmp_path):
    written = write_mmew(tmp_path / "manual", samples=SMALL)
    builder_testing.edit_cell(written["annotation"], "S01-03-001", "Estimated Emotion", "contempt")
    with pytest.raises(ArchiveError, match=r"mmew: MMEW_Micro_Exp\.xlsx, sheet 'Sheet1' row 3: unknown emotion "
                                           r"'contempt'; expected one of \['anger'"):
        mmew.read_records(tmp_path / "manual", "")
    builder = _build(tmp_path / "manual", tmp_path / "data", skip_bad_samples=True)
    [excluded] = builder.info.metadata["excluded"]
    assert excluded["clip"] == "mmew/S01/S01-03-001" and "unknown emotion 'contempt'" in excluded["reason"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 3


def test_bad_cells_are_named(tmp_path):
    written = write_mmew(tmp_path, samples=SMALL)
    builder_testing.edit_cell(written["annotation"], "S02-02-001", "OffsetFrame", "end")
    with pytest.raises(ArchiveError, match=r"mmew: .* row 4: OffsetFrame is 'end', expected an integer"):
        mmew.read_records(tmp_path, "")
    builder_testing.edit_cell(written["annotation"], "S02-02-001", "OffsetFrame", 4)
    builder_testing.edit_cell(written["annotation"], "S02-02-001", "Filename", "S01-01-001")
    with pytest.raises(ArchiveError, match=r"row 4: clip S01-01-001 is also annotated on .*row 2"):
        mmew.read_records(tmp_path, "")


def test_onset_after_offset(tmp_path):
    written = write_mmew(tmp_path / "manual", samples=SMALL)
    builder_testing.edit_cell(written["annotation"], "S02-02-001", "OnsetFrame", 5)
    with pytest.raises(ArchiveError, match=r"mmew: .*row 4 \(clip S02-02-001\): onset 5, apex 3, offset 4 are "
                                           r"not in order"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    assert [e["clip"] for e in builder.info.metadata["excluded"]] == ["mmew/S02/S02-02-001"]


def test_missing_clip_folder_and_frames(tmp_path):
    written = write_mmew(tmp_path / "manual", samples=SMALL)
    shutil.rmtree(written["samples"][1]["folder"])
    (written["samples"][2]["folder"] / "3.jpg").unlink()
    with pytest.raises(ArchiveError, match=r"mmew: .*row 3 \(clip S01-03-001\): clip folder "
                                           r".*MMEW/Micro_Expression/disgust/S01-03-001 does not exist"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    reasons = {e["clip"]: e["reason"] for e in builder.info.metadata["excluded"]}
    assert "does not exist" in reasons["mmew/S01/S01-03-001"]
    assert "frames 3 of onset..offset 1..4 are missing" in reasons["mmew/S02/S02-02-001"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 2


@pytest.mark.parametrize("content", [b"", b"\xff\xd8 truncated"], ids=["empty", "garbage"])
def test_unreadable_image(tmp_path, content):
    written = write_mmew(tmp_path / "manual", samples=SMALL)
    bad = written["samples"][3]["folder"] / "2.jpg"
    bad.write_bytes(content)
    with pytest.raises(ArchiveError, match=rf"mmew: cannot read image {bad}"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    [excluded] = builder.info.metadata["excluded"]
    assert excluded["clip"] == "mmew/S02/S02-04-001" and str(bad) in excluded["reason"]


def test_unknown_variant(tmp_path):
    write_mmew(tmp_path, samples=SMALL)
    with pytest.raises(ArchiveError, match=r"mmew: unknown variant 'raw'"):
        mmew.read_records(tmp_path, "raw")


# ----------------------------------------------------------------------- TFDS DatasetBuilderTestCase

if importlib.util.find_spec("tensorflow") is not None:
    class MmewDatasetBuilderTest(builder_testing.FixtureExampleDir, tfds.testing.DatasetBuilderTestCase):
        """TFDS's own builder checks (registration, info, build, as_dataset, reload) on a small fixture."""
        DATASET_CLASS = mmew.Builder
        BUILDER_CONFIG_NAMES_TO_TEST = ["default"]
        SPLITS = {"subject_mmew_S01": 2, "subject_mmew_S02": 2}
        SKIP_CHECKSUMS = True

        @staticmethod
        def write_fixture(folder):
            write_mmew(folder, samples=SMALL, quirks=False)
