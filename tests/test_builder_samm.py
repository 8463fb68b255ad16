"""SAMM builder (tfds_builders/samm) on fixture archives in SAMM's exact layout: a TF-free ArrayRecord
build of the 159-row default archive (13 preamble rows, 4- and 5-digit frame padding, every known quirk),
the header-on-row-1 release, the MEGC2019 ground truth's 133 clips, the aligned `default` config on
uncropped frames, every bad-input case, and a TFDS DatasetBuilderTestCase when TensorFlow is installed."""
import collections
import importlib.util
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

import builder_testing
from mer_jax.data import taxonomy
from mer_jax.data.archive import ArchiveError, frame_number
from mer_jax.data.synthetic.archives.samm import write_samm
from tfds_builders import samm

GT_FILES = (Path(__file__).parents[1] / "tfds_builders/megc2019_cde/combined_3class_gt.csv",
            Path("/work/shared/labels/megc2019_combined_3class_gt.csv"))


def _build(manual, data_dir, config="unaligned", **overrides):
    """Build `samm/<config>` (with config fields overridden) into data_dir; returns the builder."""
    return builder_testing.build(samm.Builder, manual, data_dir, config, **overrides)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("samm")
    written = write_samm(root / "manual")
    corpus, builder = builder_testing.load_built("samm/unaligned", root)
    return written, corpus, builder


def test_one_split_per_subject_and_every_row(full):
    written, corpus, builder = full
    assert written["num_samples"] == len(corpus) == 159
    assert sorted(builder.info.splits) == [f"subject_samm_{s:03d}" for s in range(6, 38)]
    per_subject = collections.Counter(s["subject"] for s in written["samples"])
    for subject, n in per_subject.items():
        assert builder.info.splits[f"subject_samm_{subject}"].num_examples == n
    assert sorted(corpus.clip) == sorted(s["clip_id"] for s in written["samples"])
    assert set(corpus.subject) == {f"samm/{s}" for s in per_subject}   # `6` and `020` cells -> 006, 020
    assert set(corpus.dataset) == {"samm"} and set(corpus.fps) == {200.0}
    assert builder.info.metadata["excluded"] == []


def test_labels_and_aus(full):
    written, corpus, builder = full
    by_clip = {s["clip_id"]: s for s in written["samples"]}
    for i, clip in enumerate(corpus.clip):
        assert corpus.emotion[i] == by_clip[clip]["emotion"]
        assert corpus.aus[i].tolist() == by_clip[clip]["aus"], clip
    counts = collections.Counter(corpus.emotion.tolist())
    assert counts == {"anger": 57, "contempt": 12, "disgust": 9, "fear": 8, "sadness": 6, "happiness": 26,
                      "surprise": 15, "others": 26}   # `Other` and `Others`
    megc = collections.Counter(corpus.labels("megc3").tolist())
    assert megc == {0: 92, 1: 26, 2: 15, -1: 26}   # the MEGC2019 SAMM part: 133 samples
    assert (corpus.labels("samm_5") >= 0).sum() == 57 + 12 + 26 + 15 + 26
    assert (corpus.labels("samm_8") >= 0).all()
    metadata = builder.info.metadata
    assert metadata["label_schemes"] == ["megc3", "samm_5", "samm_8"] and metadata["has_aus"]
    assert metadata["objective_class"] == {s["clip_id"]: s["objective"] for s in written["samples"]}


def test_key_frames_and_numeric_frame_order(full):
    written, corpus, _ = full
    by_clip = {s["clip_id"]: s for s in written["samples"]}
    for i, clip in enumerate(corpus.clip):
        s = by_clip[clip]
        assert len(corpus.encoded_frames[i]) == s["num_frames"], clip
        assert (corpus.onset[i], corpus.apex[i], corpus.offset[i]) == (0, s["apex"] - s["onset"],
                                                                        s["num_frames"] - 1), clip
    # Subject 007 (4-digit padding) has a clip 9998..10001: a string sort would put 10000 first.
    crossing = next(s for s in written["samples"] if s["onset"] == 9998)
    folder = written["frames_root"] / crossing["subject"] / crossing["clip"]
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "007_10000.jpg" and "007_9998.jpg" in names
    i = list(corpus.clip).index(crossing["clip_id"])
    on_disk = [p.read_bytes() for p in sorted(folder.iterdir(), key=frame_number)]
    assert list(corpus.encoded_frames[i]) == on_disk   # JPEG bytes stored unchanged, numeric order
    # 5-digit padding for even subjects: the example of corpora.md.
    assert (written["frames_root"] / "006" / "006_1_2" / "006_05562.jpg").exists()
    assert corpus.frames(i, [0]).shape == (1, 32, 32, 3)   # grey JPEG decodes to 3 equal channels


def test_quirks_fixed_where_the_row_shows_them(full):
    written, corpus, builder = full
    fixes = builder_testing.fixes_by_clip(builder)
    fixed = {s["clip_id"] for s in written["samples"] if s["fixed"]}
    assert set(fixes) == fixed and len(fixed) == 12
    rows = written["samples"]
    assert any("Offset Frame '5793' -> 5739 (meb" in f for f in fixes[rows[56]["clip_id"]])
    for row, apex in ((125, 1105), (132, 4945), (133, 5130)):
        assert any(f"-> {apex} (meb: missing/invalid apex" in f for f in fixes[rows[row]["clip_id"]])
        i = list(corpus.clip).index(rows[row]["clip_id"])
        assert corpus.apex[i] == apex - rows[row]["onset"]
    for clip in ("samm/028/028_4_1", "samm/032/032_3_1"):
        [note] = fixes[clip]
        assert "merlib: apex outside onset..offset" in note
        i = list(corpus.clip).index(clip)
        assert corpus.apex[i] == corpus.offset[i] // 2   # (onset + offset) // 2 as an index
    for row, aus in ((15, "R12 + R15"), (18, "R12 + R15"), (41, "L14"), (64, "R14"), (154, "R14A")):
        assert any(f"-> {aus!r} (meb: 'or' in the AU cell" in f for f in fixes[rows[row]["clip_id"]])
    assert any("'12 or 14' lists alternatives" in f for f in fixes[rows[7]["clip_id"]])
    # Each fix names the spreadsheet row: data row 56 is Excel row 14 + 1 + 56.
    assert any("row 71)" in f for f in fixes[rows[56]["clip_id"]])


def test_quirk_rows_with_correct_content_are_left_alone(tmp_path):
    """A row at a quirk-table index (or a named clip) whose cells are consistent is not changed."""
    samples = [{"subject": 6, "clip": f"006_{k}_1", "emotion": "Anger"} for k in range(1, 58)]
    samples[-1] = {"subject": 28, "clip": "028_4_1", "emotion": "Anger"}
    write_samm(tmp_path, samples=samples, quirks=False)
    records, excluded = samm.read_records(tmp_path, "")
    assert len(records) == 57 and not excluded
    assert not any(r.fixes for r in records)


def test_header_on_row_one_release(tmp_path):
    samples = [{"subject": "006", "clip": "006_1_2", "emotion": "Happiness"},
               {"subject": 9, "clip": "009_2_1", "emotion": "Others"},
               {"subject": "030", "clip": "030_5_3", "emotion": "Contempt", "apex": None}]
    written = write_samm(tmp_path / "manual", samples=samples, variant="20181215")
    assert written["annotation"].name == "SAMM_20181215_Micro_FACS_Codes_v2.xlsx"
    records, excluded = samm.read_records(tmp_path / "manual", "")
    assert not excluded
    assert [(r.subject, r.clip, r.emotion) for r in records] == [
        ("006", "006_1_2", "happiness"), ("009", "009_2_1", "others"), ("030", "030_5_3", "contempt")]
    assert records[0].where.endswith("row 2")
    assert records[2].apex is None   # blank apex, no table entry: the builder's midpoint rule
    builder = _build(tmp_path / "manual", tmp_path / "data")
    fixes = builder_testing.fixes_by_clip(builder)
    assert any("no apex annotated: apex = (onset + offset) // 2" in f for f in fixes["samm/030/030_5_3"])
    example = builder.as_data_source()["subject_samm_030"][0]
    assert (example["onset"], example["apex"], example["offset"]) == (0, 1, 3)


def test_megc2019_ground_truth_clips(tmp_path):
    """The composite's fixture asks for the GT's 133 SAMM clips in the GT's spelling (subject `6`)."""
    gt = next((p for p in GT_FILES if p.exists()), None)
    if gt is None:
        pytest.skip("no MEGC2019 ground truth file")
    rows = [line.split(",") for line in gt.read_text().split() if line.startswith("samm,")]
    names = {"0": "Disgust", "1": "Happiness", "2": "Surprise"}
    samples = [{"subject": s, "clip": c, "emotion": names[k]} for _, s, c, k in rows]
    write_samm(tmp_path, samples=samples, frames_per_clip=3)
    records, excluded = samm.read_records(tmp_path, "unaligned")   # the composite passes its config name
    assert len(records) == 133 and not excluded
    assert len({r.subject for r in records}) == 28
    assert {r.clip for r in records} == {c for _, _, c, _ in rows}
    counts = collections.Counter(taxonomy.megc3_label(r.emotion) for r in records)
    assert counts == {0: 92, 1: 26, 2: 15}
    fixed = {r.clip for r in records if r.fixes}
    assert {"028_4_1", "032_3_1", records[56].clip, records[125].clip, records[132].clip} <= fixed


# ------------------------------------------------------------------------------------- aligned default

RAW = [{"subject": 6, "clip": "006_1_2", "emotion": "Disgust"}, {"subject": 7, "clip": "007_1_1", "emotion": "Fear"},
       {"subject": 7, "clip": "007_2_1", "emotion": "Happiness"}]


def test_default_config_aligns_uncropped_frames(tmp_path):
    written = write_samm(tmp_path / "manual", samples=RAW, raw_faces=True)
    first = written["frames_root"] / "006" / "006_1_2" / "006_05562.jpg"
    assert cv2.imread(str(first), cv2.IMREAD_UNCHANGED).shape == (325, 480)   # grey, uncropped
    builder = _build(tmp_path / "manual", tmp_path / "data", "default")
    assert builder.builder_config.align and builder.builder_config.image_size == 224
    frames = builder.as_data_source()["subject_samm_006"][0]["frames"]
    assert np.asarray(frames).shape == (4, 224, 224, 3)
    assert sum(builder.info.metadata["alignment"].values()) == 3


def test_default_config_without_a_face(tmp_path):
    written = write_samm(tmp_path / "manual", samples=RAW, raw_faces=True)
    folder = written["frames_root"] / "007" / "007_1_1"
    for path in folder.iterdir():   # blank frames: no face to find
        cv2.imwrite(str(path), np.full((325, 480), 118, np.uint8))
    with pytest.raises(ArchiveError, match=r"samm: .*row 16 \(clip 007_1_1\): no face found"):
        _build(tmp_path / "manual", tmp_path / "data", "default", image_size=32)
    builder = _build(tmp_path / "manual", tmp_path / "data2", "default", image_size=32, skip_bad_samples=True)
    [excluded] = builder.info.metadata["excluded"]
    assert excluded["clip"] == "samm/007/007_1_1" and "no face found" in excluded["reason"]
    assert builder.info.splits["subject_samm_007"].num_examples == 1


# ------------------------------------------------------------------------------------------- bad input

SMALL = [{"subject": 6, "clip": "006_1_2", "emotion": "Happiness"},
         {"subject": 6, "clip": "006_2_1", "emotion": "Anger"},
         {"subject": 11, "clip": "011_1_1", "emotion": "Surprise"},
         {"subject": 11, "clip": "011_2_1", "emotion": "Contempt"}]


def test_missing_manual_dir_prints_instructions(tmp_path):
    with pytest.raises(AssertionError, match=r"SAMM/006/006_1_2/006_05562\.jpg"):
        _build(tmp_path / "absent", tmp_path / "data")


def test_no_annotation_file(tmp_path):
    written = write_samm(tmp_path, samples=SMALL)
    written["annotation"].unlink()
    with pytest.raises(ArchiveError, match=r"samm: no SAMM annotation file under .*SAMM_Micro_FACS_Codes_v2\.xlsx"):
        samm.read_records(tmp_path, "")


def test_unknown_emotion(tmp_path):
    written = write_samm(tmp_path / "manual", samples=SMALL)
    builder_testing.edit_cell(written["annotation"], "006_2_1", "Estimated Emotion", "Joy")
    with pytest.raises(ArchiveError, match=r"samm: SAMM_Micro_FACS_Codes_v2\.xlsx, sheet 'Sheet1' row 16: "
                                           r"unknown emotion 'Joy'; expected one of \['anger'"):
        samm.read_records(tmp_path / "manual", "")
    builder = _build(tmp_path / "manual", tmp_path / "data", skip_bad_samples=True)
    [excluded] = builder.info.metadata["excluded"]
    assert excluded["clip"] == "samm/006/006_2_1" and "unknown emotion 'Joy'" in excluded["reason"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 3


def test_bad_cells_are_named(tmp_path):
    written = write_samm(tmp_path, samples=SMALL)
    builder_testing.edit_cell(written["annotation"], "006_2_1", "Onset Frame", "abc")
    with pytest.raises(ArchiveError, match=r"samm: .* row 16: Onset Frame is 'abc', expected an integer"):
        samm.read_records(tmp_path, "")
    builder_testing.edit_cell(written["annotation"], "006_2_1", "Onset Frame", written["samples"][1]["onset"])
    builder_testing.edit_cell(written["annotation"], "006_2_1", "Filename", "006_1_2")
    with pytest.raises(ArchiveError, match=r"row 16: clip 006_1_2 of subject 006 is also annotated on .*row 15"):
        samm.read_records(tmp_path, "")


def test_onset_after_offset_and_apex_outside(tmp_path):
    written = write_samm(tmp_path / "manual", samples=SMALL)
    s = written["samples"][1]
    builder_testing.edit_cell(written["annotation"], "006_2_1", "Onset Frame", s["offset"] + 1)
    with pytest.raises(ArchiveError, match=rf"samm: .*row 16 \(clip 006_2_1\): onset {s['offset'] + 1}, apex "
                                           rf"{s['apex']}, offset {s['offset']} are not in order"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder_testing.edit_cell(written["annotation"], "006_2_1", "Onset Frame", s["onset"])
    builder_testing.edit_cell(written["annotation"], "006_2_1", "Apex Frame", s["offset"] + 3)   # no quirk-table entry
    with pytest.raises(ArchiveError, match=r"row 16 \(clip 006_2_1\): .*not in order"):
        _build(tmp_path / "manual", tmp_path / "data2")
    builder = _build(tmp_path / "manual", tmp_path / "data3", skip_bad_samples=True)
    assert [e["clip"] for e in builder.info.metadata["excluded"]] == ["samm/006/006_2_1"]


def test_missing_clip_folder_and_frames(tmp_path):
    written = write_samm(tmp_path / "manual", samples=SMALL)
    shutil.rmtree(written["frames_root"] / "011" / "011_1_1")
    s = written["samples"][0]
    (written["frames_root"] / "006" / "006_1_2" / f"006_{s['onset'] + 1:05d}.jpg").unlink()
    with pytest.raises(ArchiveError, match=rf"samm: .*row 15 \(clip 006_1_2\): frames {s['onset'] + 1} of "
                                           rf"onset..offset {s['onset']}..{s['offset']} are missing"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    reasons = {e["clip"]: e["reason"] for e in builder.info.metadata["excluded"]}
    assert "are missing" in reasons["samm/006/006_1_2"]
    assert "SAMM/011/011_1_1 does not exist" in reasons["samm/011/011_1_1"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 2


@pytest.mark.parametrize("content", [b"", b"not a jpeg"], ids=["empty", "garbage"])
def test_unreadable_image(tmp_path, content):
    written = write_samm(tmp_path / "manual", samples=SMALL)
    s = written["samples"][2]
    bad = written["frames_root"] / "011" / "011_1_1" / f"011_{s['onset'] + 2:04d}.jpg"
    bad.write_bytes(content)
    with pytest.raises(ArchiveError, match=rf"samm: cannot read image {bad}"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    [excluded] = builder.info.metadata["excluded"]
    assert excluded["clip"] == "samm/011/011_1_1" and str(bad) in excluded["reason"]


def test_unknown_variant(tmp_path):
    write_samm(tmp_path, samples=SMALL)
    with pytest.raises(ArchiveError, match=r"samm: unknown variant 'cropped'"):
        samm.read_records(tmp_path, "cropped")


# ----------------------------------------------------------------------- TFDS DatasetBuilderTestCase

if importlib.util.find_spec("tensorflow") is not None:
    class SammDatasetBuilderTest(builder_testing.FixtureExampleDir, tfds.testing.DatasetBuilderTestCase):
        """TFDS's own builder checks (registration, info, build, as_dataset, reload) on a small fixture."""
        DATASET_CLASS = samm.Builder
        BUILDER_CONFIG_NAMES_TO_TEST = ["unaligned"]
        SPLITS = {"subject_samm_006": 2, "subject_samm_011": 2}
        SKIP_CHECKSUMS = True

        @staticmethod
        def write_fixture(folder):
            write_samm(folder, samples=SMALL, quirks=False)
