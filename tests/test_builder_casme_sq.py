"""CAS(ME)^2 builder (tfds_builders/casme_sq) on fixture copies in the release's exact layout: TF-free
ArrayRecord builds of both configs, micro-expressions cut out of long videos, macro rows counted, the
known quirks (offset 0, apex 0, `unnyfarting`, a misplaced long video) and every bad-input case."""
import collections

import numpy as np
import openpyxl
import pytest

import builder_testing
from mer_jax.data import taxonomy
from mer_jax.data.archive import ArchiveError, au_vector
from mer_jax.data.synthetic.archives.casme_sq import write_casme_sq
from tfds_builders import casme_sq


def _build(manual, data_dir, config="unaligned", **overrides):
    return builder_testing.build(casme_sq.Builder, manual, data_dir, config, **overrides)


def _edit(path, row, column, value):
    """Set one cell (1-based row, 1-based column) of the CASFEcode_final sheet."""
    builder_testing.set_cell(path, row, column, value, sheet="CASFEcode_final")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("casme_sq")
    written = write_casme_sq(root / "manual")
    corpus, builder = builder_testing.load_built("casme_sq/unaligned", root)
    micro = {f"casme_sq/{s['subject']}/{s['clip']}": s for s in written["samples"]
             if s["type"] == "micro-expression"}
    return root, written, corpus, builder, micro


def test_micro_expressions_one_split_per_subject(built):
    _, written, corpus, builder, micro = built
    assert (written["micro"], written["macro"]) == (8, 3)
    assert sorted(builder.info.splits) == [f"subject_casme_sq_{s}" for s in ("s15", "s16", "s19", "s23")]
    assert sorted(corpus.clip) == sorted(micro)
    assert set(corpus.fps) == {30.0} and set(corpus.dataset) == {"casme_sq"}


def test_macro_expressions_are_counted_not_excluded(built):
    _, _, _, builder, _ = built
    metadata = builder.info.metadata
    assert metadata["macro_expressions"] == 3 and metadata["excluded"] == []
    assert metadata["annotation"] == "CAS(ME)^2code_final.xlsx"
    assert metadata["label_schemes"] == ["megc3", "casme_sq_4"] and metadata["has_aus"]


def test_frames_cut_from_the_long_video(built):
    _, _, corpus, _, micro = built
    for i, clip in enumerate(corpus.clip):
        sample = micro[clip]
        assert len(corpus.encoded_frames[i]) == sample["offset"] - sample["onset"] + 1
        assert corpus.onset[i] == 0
        assert corpus.apex[i] == sample["apex"] - sample["onset"]
        assert corpus.offset[i] == sample["offset"] - sample["onset"]
        # Unaligned JPEG frames are stored byte for byte: frame k is img{onset + k:03d}.jpg.
        for k in (0, int(corpus.apex[i]), len(corpus.encoded_frames[i]) - 1):
            on_disk = (sample["folder"] / f"img{sample['onset'] + k:03d}.jpg").read_bytes()
            assert corpus.encoded_frames[i][k] == on_disk


def test_labels_and_aus(built):
    _, _, corpus, _, micro = built
    for i, clip in enumerate(corpus.clip):
        assert corpus.emotion[i] == micro[clip]["emotion"]
        assert corpus.label_3class[i] == taxonomy.megc3_label(micro[clip]["emotion"])
        assert list(corpus.aus[i]) == au_vector(str(micro[clip]["aus"]))
    assert set(corpus.emotion) == {"negative", "positive", "surprise", "others"}
    own = corpus.labels("casme_sq_4")
    assert sorted(collections.Counter(own.tolist())) == [0, 1, 2, 3]
    assert (corpus.labels("megc3")[corpus.emotion == "others"] == -1).all()
    assert corpus.aus.any()


def test_quirks_fixed_and_recorded(built):
    _, _, corpus, builder, micro = built
    fixes = builder_testing.fixes_by_clip(builder)
    quirky = {clip: s["quirk"] for clip, s in micro.items() if s.get("quirk")}
    assert quirky == {"casme_sq/s16/happy2_1": "apex_zero", "casme_sq/s16/anger1_1": "offset_zero",
                      "casme_sq/s23/happy1_1": "misplaced:s19"}
    assert any("offset 0" in f for f in fixes["casme_sq/s16/anger1_1"])
    assert any("apex 0" in f for f in fixes["casme_sq/s16/happy2_1"])
    assert any("another subject's folder: s19/23_0502funnyerrors" in f for f in fixes["casme_sq/s23/happy1_1"])
    assert micro["casme_sq/s16/happy2_1"]["folder"].name == "16_0503unnyfarting"   # (sic), found by prefix
    i = list(corpus.clip).index("casme_sq/s16/anger1_1")
    assert corpus.apex[i] == corpus.offset[i]   # offset 0 -> offset = apex


def test_aligned_default_config(tmp_path):
    write_casme_sq(tmp_path / "manual", samples=[
        {"subject": "s15", "clip": "disgust1_1", "emotion": "negative"},
        {"subject": 2, "clip": "happy2_1", "emotion": "positive"}])
    builder = _build(tmp_path / "manual", tmp_path / "data", "default", image_size=48)
    example = builder.as_data_source()["subject_casme_sq_s16"][0]
    assert np.asarray(example["frames"]).shape == (5, 48, 48, 3)
    assert sum(builder.info.metadata["alignment"].values()) == 2


def test_other_workbook_name_and_a_header_row(tmp_path):
    written = write_casme_sq(tmp_path, annotation="code_final.xlsx", folder="CASME_sq")
    book = openpyxl.load_workbook(written["annotation"])
    book["CASFEcode_final"].insert_rows(1)
    for k, name in enumerate(["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Emotion", "Type",
                              "Self-report"], start=1):
        book["CASFEcode_final"].cell(row=1, column=k, value=name)
    book.save(written["annotation"])
    records, excluded, summary = casme_sq.read_annotations(tmp_path)
    assert len(records) == 8 and excluded == [] and summary == {"macro_expressions": 3,
                                                                "annotation": "code_final.xlsx"}


# ------------------------------------------------------------------------------------------- bad input

SMALL = [{"subject": "s15", "clip": "disgust1_1", "emotion": "negative"},
         {"subject": "s15", "clip": "disgust1_2", "emotion": "surprise"},
         {"subject": "s15", "clip": "happy1_1", "emotion": "positive"},
         {"subject": "s16", "clip": "anger1_1", "emotion": "others"}]


def test_missing_manual_dir_prints_instructions(tmp_path):
    with pytest.raises(AssertionError, match=r"CAS\(ME\)\^2/rawpic/s15/15_0101disgustingteeth"):
        _build(tmp_path / "absent", tmp_path / "data")


def test_copy_without_workbook(tmp_path):
    written = write_casme_sq(tmp_path, samples=SMALL)
    written["annotation"].unlink()
    with pytest.raises(ArchiveError, match=r"casme_sq: .* has rawpic/ but no annotation workbook"):
        casme_sq.read_records(tmp_path)


@pytest.mark.parametrize("column, value, message", [
    (1, 23, r"row 1: subject id 23 is not in sheet 'naming rule1'"),
    (2, "sad1_1", r"row 1: clip 'sad1_1': its video 'sad1' is not in sheet 'naming rule2'"),
    (7, "happy", r"row 1 \(emotion category\): unknown emotion 'happy'"),
    (8, "micro", r"row 1: expression type is 'micro'"),
    (3, "x", r"row 1: onset is 'x', expected an integer"),
])
def test_bad_cells_name_the_row(tmp_path, column, value, message):
    written = write_casme_sq(tmp_path, samples=SMALL)
    _edit(written["annotation"], 1, column, value)
    with pytest.raises(ArchiveError, match=r"casme_sq: CAS\(ME\)\^2code_final.xlsx, sheet 'CASFEcode_final' "
                                           + message):
        casme_sq.read_records(tmp_path)


def test_unknown_emotion_skipped_when_asked(tmp_path):
    written = write_casme_sq(tmp_path / "manual", samples=SMALL)
    _edit(written["annotation"], 1, 7, "happy")
    builder = _build(tmp_path / "manual", tmp_path / "data", skip_bad_samples=True)
    [excluded] = builder.info.metadata["excluded"]
    assert "unknown emotion 'happy'" in excluded["reason"] and excluded["where"].endswith("row 1")
    assert sum(s.num_examples for s in builder.info.splits.values()) == 3


def test_onset_after_offset(tmp_path):
    written = write_casme_sq(tmp_path / "manual", samples=SMALL)
    _edit(written["annotation"], 1, 3, written["samples"][0]["offset"] + 1)
    with pytest.raises(ArchiveError, match=r"casme_sq: .*row 1 \(clip disgust1_1\): onset \d+, apex \d+, "
                                           r"offset \d+ are not in order"):
        _build(tmp_path / "manual", tmp_path / "data")


def test_missing_long_video_folder(tmp_path):
    written = write_casme_sq(tmp_path, samples=SMALL)
    folder = written["samples"][3]["folder"]
    folder.rename(folder.with_name("16_0999other"))
    with pytest.raises(ArchiveError, match=r"casme_sq: .*row 4: no long-video folder .*s16/16_0401\*"):
        casme_sq.read_records(tmp_path)


def test_missing_and_unreadable_frames(tmp_path):
    written = write_casme_sq(tmp_path / "manual", samples=SMALL)
    first, second = written["samples"][:2]
    (first["folder"] / f"img{first['apex']:03d}.jpg").unlink()
    with pytest.raises(ArchiveError, match=rf"casme_sq: .*row 1 \(clip disgust1_1\): frames {first['apex']} of "
                                           rf"onset..offset {first['onset']}..{first['offset']} are missing"):
        _build(tmp_path / "manual", tmp_path / "data")
    bad = second["folder"] / f"img{second['onset']:03d}.jpg"
    bad.write_bytes(b"")   # a zero-byte frame
    builder = _build(tmp_path / "manual", tmp_path / "data2", skip_bad_samples=True)
    reasons = {e["clip"]: e["reason"] for e in builder.info.metadata["excluded"]}
    assert "are missing" in reasons["casme_sq/s15/disgust1_1"]
    assert f"cannot read image {bad}" in reasons["casme_sq/s15/disgust1_2"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 2
