"""CAS(ME)^3 Part A builder (tfds_builders/casme3) on fixture copies in the release's exact layout:
TF-free ArrayRecord builds (unaligned, aligned, with depth), MEs cut from shared videos, the known quirks
(uppercase `J`, repeated (Subject, Filename), onset 0 without 0.jpg, dropped frames, meb's row fixes)
and every bad-input case."""
import collections

import cv2
import numpy as np
import pytest

import builder_testing
from mer_jax.data import taxonomy
from mer_jax.data.archive import ArchiveError, au_vector
from mer_jax.data.synthetic.archives import casme3 as fixture
from mer_jax.data.synthetic.archives.casme3 import write_casme3
from tfds_builders import casme3

TAXONOMY = {"disgust": "disgust", "surprise": "surprise", "happy": "happiness", "fear": "fear",
            "others": "others", "anger": "anger", "sad": "sadness"}


def _build(manual, data_dir, config="unaligned", **overrides):
    return builder_testing.build(casme3.Builder, manual, data_dir, config, **overrides)


def _clip_ids(written):
    """Expected clip ids: meb's numbering of repeated (Subject, Filename) in row order."""
    counts, out = collections.Counter(), []
    for s in written["samples"]:
        counts[(s["subject"], s["video"])] += 1
        n = counts[(s["subject"], s["video"])]
        out.append(f"casme3/{s['subject']}/{s['video']}{n if n > 1 else ''}")
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("casme3")
    written = write_casme3(root / "manual")
    corpus, builder = builder_testing.load_built("casme3/unaligned", root)
    samples = dict(zip(_clip_ids(written), written["samples"]))
    return root, written, corpus, builder, samples


def test_one_split_per_subject(built):
    _, written, corpus, builder, samples = built
    assert sorted(builder.info.splits) == ["subject_casme3_spNO_1", "subject_casme3_spNO_2", "subject_casme3_spNO_3"]
    assert sorted(corpus.clip) == sorted(samples) and len(corpus) == written["micro"] == 10
    assert {"casme3/spNO.1/a", "casme3/spNO.1/a2", "casme3/spNO.1/a3", "casme3/spNO.2/j"} <= set(corpus.clip)
    metadata = builder.info.metadata
    assert metadata["annotation"] == fixture.JPGINDEX_V2 and metadata["excluded"] == []
    assert metadata["label_schemes"] == ["megc3", "casme3_7"] and not metadata["with_depth"]
    assert set(corpus.fps) == {30.0}


def test_labels_and_aus(built):
    _, _, corpus, _, samples = built
    for i, clip in enumerate(corpus.clip):
        emotion = TAXONOMY[str(samples[clip]["emotion"]).lower()]
        assert corpus.emotion[i] == emotion
        assert corpus.label_3class[i] == taxonomy.megc3_label(emotion)
        assert list(corpus.aus[i]) == au_vector(str(samples[clip]["aus"]))
    assert set(corpus.emotion) == set(taxonomy.LABEL_SCHEMES["casme3_7"])
    assert (corpus.labels("casme3_7") >= 0).all()
    assert (corpus.labels("megc3")[corpus.emotion == "others"] == -1).all()


def test_frames_cut_from_the_video(built):
    _, _, corpus, _, samples = built
    for i, clip in enumerate(corpus.clip):
        s = samples[clip]
        assert len(corpus.encoded_frames[i]) == s["offset"] - s["onset"] + 1
        expected = (0, s["apex"] - s["onset"], s["offset"] - s["onset"])
        assert (corpus.onset[i], corpus.apex[i], corpus.offset[i]) == expected
        for k in (0, len(corpus.encoded_frames[i]) - 1):
            assert corpus.encoded_frames[i][k] == (s["folder"] / f"{s['onset'] + k}.jpg").read_bytes()


def test_quirks_fixed_and_recorded(built):
    _, _, corpus, builder, samples = built
    fixes = builder_testing.fixes_by_clip(builder)
    assert any("'J' lower-cased to 'j'" in f for f in fixes["casme3/spNO.2/j"])
    assert any("stored as a2" in f for f in fixes["casme3/spNO.1/a2"])
    assert any("onset 0 but 0.jpg does not exist" in f for f in fixes["casme3/spNO.2/c"])
    i = list(corpus.clip).index("casme3/spNO.2/c")
    assert corpus.apex[i] == 0 and samples["casme3/spNO.2/c"]["cells"]["onset"] == 0
    [dropped] = samples["casme3/spNO.3/f"]["dropped"]
    assert any(f"frames {dropped} dropped" in f for f in fixes["casme3/spNO.3/f"])
    i = list(corpus.clip).index("casme3/spNO.3/f")
    k = dropped - samples["casme3/spNO.3/f"]["onset"]
    assert corpus.encoded_frames[i][k] == corpus.encoded_frames[i][k - 1]


def test_depth_aligned_with_the_colour_frames(tmp_path):
    written = write_casme3(tmp_path / "manual", samples=[
        {"subject": "spNO.1", "filename": "a", "emotion": "happy"},
        {"subject": "spNO.4", "filename": "b", "emotion": "sad", "quirk": "dropped"}])
    builder = _build(tmp_path / "manual", tmp_path / "data", "depth", image_size=48)
    assert builder.info.metadata["with_depth"] and "depth" in builder.info.features
    sources = builder.as_data_source()
    for split, sample in zip(("subject_casme3_spNO_1", "subject_casme3_spNO_4"), written["samples"]):
        example = sources[split][0]
        depth = np.asarray(example["depth"])
        assert depth.shape == (5, 48, 48, 1) and depth.dtype == np.uint16
        assert np.asarray(example["frames"]).shape == (5, 48, 48, 3)
        numbers = [n - (n in sample["dropped"]) for n in range(sample["onset"], sample["offset"] + 1)]
        np.testing.assert_array_equal(depth.max(axis=(1, 2, 3)), [1000 + n for n in numbers])


def test_depth_unaligned_is_the_file(tmp_path):
    written = write_casme3(tmp_path / "manual", samples=[{"subject": "spNO.1", "filename": "a", "emotion": "fear"}])
    builder = _build(tmp_path / "manual", tmp_path / "data", "unaligned", with_depth=True)
    depth = np.asarray(builder.as_data_source()["subject_casme3_spNO_1"][0]["depth"])
    s = written["samples"][0]
    on_disk = cv2.imread(str(s["folder"].parent / "depth" / f"{s['onset']}.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(depth[0, ..., 0], on_disk)


def test_meb_row_fixes_apply_only_to_inconsistent_rows_of_its_file(tmp_path):
    """meb's fixes are keyed by its 0-based data row of ..._JpgIndex_v2.xlsx (860 rows)."""
    samples = [{"subject": "spNO.1", "filename": "a", "emotion": "disgust", "onset": 2, "apex": 3, "offset": 5,
                "frames": (1, 6)} for _ in range(800)]
    bad = {128: ({"onset": 155, "apex": 16, "offset": 165}, (150, 170), "apex", 160),
           749: ({"onset": 2747, "apex": 2650, "offset": 2655}, (2640, 2660), "onset", 2647),
           708: ({"onset": 20, "apex": 28, "offset": 3}, (1, 40), "offset", 34),
           796: ({"onset": 1830, "apex": 1838, "offset": 1745}, (1825, 1850), "offset", 1845),
           798: ({"onset": 2390, "apex": 2398, "offset": 2303}, (2385, 2410), "offset", 2403)}
    for row, (cells, frames, _, _) in bad.items():
        samples[row] = {"subject": f"spNO.{row}", "filename": "b", "emotion": "anger", **cells, "frames": frames}
    samples[0] = {**samples[0], "subject": "spNO.2"}   # a consistent row elsewhere is left alone
    write_casme3(tmp_path / "v2", samples=samples, depth=False, resolution=32, raw_size=(32, 32))
    records, _ = casme3.read_records(tmp_path / "v2")
    assert len(records) == 800
    for row, (cells, _, field, value) in bad.items():
        record = records[row]
        assert getattr(record, field) == value
        assert record.fixes == [f"meb fix of data row {row}: {field} {cells[field]} -> {value}"]
    assert all(not r.fixes for i, r in enumerate(records) if i not in bad and r.clip == "a")
    # The same rows in the official v1 file are not meb's rows: left as annotated.
    (tmp_path / "v2" / fixture.JPGINDEX_V2).rename(tmp_path / "v2" / "cas(me)3_part_A_ME_label_JpgIndex_v1.xlsx")
    records, _ = casme3.read_records(tmp_path / "v2")
    assert records[128].apex == 16 and not records[128].fixes


def test_au_emotion_sheet_cannot_label_samples(tmp_path):
    written = write_casme3(tmp_path, samples=[{"subject": 1, "filename": "a", "emotion": "happy"}],
                           annotation=fixture.AU_EMOTION, depth=False)
    with pytest.raises(ArchiveError, match=r"casme3: CAS\(ME\)3_part_A_v2.xlsx, sheet 'AU\+Emotion' has no "
                                           r"emotion column .*JpgIndex_v2.xlsx"):
        casme3.read_records(tmp_path)
    write_casme3(tmp_path, samples=[{"subject": 1, "filename": "a", "emotion": "happy"}], depth=False)
    records, _, summary = casme3.read_annotations(tmp_path)   # the JpgIndex workbook is preferred
    assert summary["annotation"] == fixture.JPGINDEX_V2 and len(records) == 1
    assert written["macro"] == 2


def test_xls_needs_an_extra_package(tmp_path):
    write_casme3(tmp_path, samples=[{"subject": 1, "filename": "a", "emotion": "happy"}], depth=False)
    (tmp_path / fixture.JPGINDEX_V2).unlink()
    (tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xls").write_bytes(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))   # an OLE2 (BIFF .xls) file
    with pytest.raises(ArchiveError, match=r"JpgIndex_v2.xls: reading it needs an extra package.*save the "
                                           r"file as .xlsx"):
        casme3.read_records(tmp_path)


# ------------------------------------------------------------------------------------------- bad input

SMALL = [{"subject": "spNO.1", "filename": "a", "emotion": "disgust"},
         {"subject": "spNO.1", "filename": "b", "emotion": "happy"},
         {"subject": "spNO.1", "filename": "c", "emotion": "surprise"}]


def test_missing_manual_dir_prints_instructions(tmp_path):
    with pytest.raises(AssertionError, match=r"part_A/data/part_A_split/part_A/spNO.1/a/color/355.jpg"):
        _build(tmp_path / "absent", tmp_path / "data")


def test_copy_without_frames_or_labels(tmp_path):
    written = write_casme3(tmp_path, samples=SMALL[:1], depth=False)
    written["annotation"].unlink()
    with pytest.raises(ArchiveError, match=r"casme3: no Part A label workbook under"):
        casme3.read_records(tmp_path)
    with pytest.raises(ArchiveError, match=r"casme3: no Part A frames in"):
        casme3.read_records(tmp_path / "part_A" / "data" / "part_A_split" / "part_A" / "spNO.1")


@pytest.mark.parametrize("column, value, message", [
    (8, "contempt", r"row 2 \(emotion\): unknown emotion 'contempt'"),
    (2, "z", r"row 2: clip folder .*spNO.1/z/color does not exist"),
    (1, "spNO.9", r"row 2: no subject folder .*spNO.9"),
    (4, "/", r"row 2: Apex is '/', expected an integer"),
])
def test_bad_cells_name_the_row(tmp_path, column, value, message):
    written = write_casme3(tmp_path, samples=SMALL, depth=False)
    builder_testing.set_cell(written["annotation"], 2, column, value)
    with pytest.raises(ArchiveError, match=r"casme3: cas\(me\)3_part_A_ME_label_JpgIndex_v2.xlsx, sheet "
                                           r"'Sheet1' " + message):
        casme3.read_records(tmp_path)


def test_onset_after_offset(tmp_path):
    written = write_casme3(tmp_path / "manual", samples=SMALL, depth=False)
    builder_testing.set_cell(written["annotation"], 3, 3, written["samples"][1]["offset"])
    builder_testing.set_cell(written["annotation"], 3, 5, written["samples"][1]["onset"])
    with pytest.raises(ArchiveError, match=r"casme3: .*row 3 \(clip b\): onset \d+, apex \d+, offset \d+ are "
                                           r"not in order"):
        _build(tmp_path / "manual", tmp_path / "data")


def test_bad_samples_excluded_when_asked(tmp_path):
    written = write_casme3(tmp_path / "manual", samples=SMALL + [
        {"subject": "spNO.2", "filename": "a", "emotion": "fear"},
        {"subject": "spNO.1", "filename": "d", "emotion": "anger"},     # every subject keeps a good clip
        {"subject": "spNO.2", "filename": "b", "emotion": "Others"}])
    builder_testing.set_cell(written["annotation"], 2, 8, "contempt")                         # unknown emotion (reader)
    b = written["samples"][1]
    for n in range(b["onset"] + 1, b["onset"] + 5):                        # 4 frames gone: not a camera drop
        (b["folder"] / f"{n}.jpg").unlink()
    with pytest.raises(ArchiveError, match=r"row 2 \(emotion\): unknown emotion"):
        _build(tmp_path / "manual", tmp_path / "data")
    builder_testing.set_cell(written["annotation"], 2, 8, "disgust")
    with pytest.raises(ArchiveError, match=rf"row 3 \(clip b\): frames {b['onset'] + 1}-{b['onset'] + 4} of "
                                           rf"onset..offset .* are missing"):
        _build(tmp_path / "manual", tmp_path / "data2")
    builder_testing.set_cell(written["annotation"], 2, 8, "contempt")
    c = written["samples"][2]
    (c["folder"] / f"{c['apex']}.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # unreadable image
    d = written["samples"][3]
    (d["folder"].parent / "depth" / f"{d['offset']}.png").unlink()         # missing depth frame
    builder = _build(tmp_path / "manual", tmp_path / "data3", "depth", image_size=32, skip_bad_samples=True)
    reasons = {e["clip"]: e["reason"] for e in builder.info.metadata["excluded"]}
    assert "unknown emotion 'contempt'" in reasons["casme3/spNO.1/a"]
    assert "are missing" in reasons["casme3/spNO.1/b"]
    assert "cannot read image" in reasons["casme3/spNO.1/c"]
    assert "cannot read depth frame" in reasons["casme3/spNO.2/a"]
    assert sorted(builder.info.splits) == ["subject_casme3_spNO_1", "subject_casme3_spNO_2"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 2
