"""CASME II builder (tfds_builders/casme2) on fixture archives written in the real layout
(mer_jax/data/synthetic/archives/casme2.py): splits, counts, labels, key frames against the written
frames, every quirk fixed and recorded, every bad-input case, the raw variants' face alignment, and a
TFDS DatasetBuilderTestCase when TensorFlow is installed."""
import collections
import importlib.util
import re
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import builder_testing
import tfds_builders  # noqa: F401  (registers the builders)
from mer_jax.data import archive, taxonomy
from mer_jax.data.archive import ArchiveError
from mer_jax.data.corpus import load_corpus
from mer_jax.data.synthetic.archives import casme2 as fixture
from tfds_builders.casme2 import casme2_dataset_builder as casme2


def _build(manual_dir, data_dir, config="cropped", **overrides):
    return builder_testing.build(casme2.Builder, manual_dir, data_dir, config, **overrides)


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    root = tmp_path_factory.mktemp("casme2")
    written = fixture.write_casme2(root / "manual")
    builder = _build(root / "manual", root / "tfds")
    return written, builder, builder_testing.examples(builder)


# ---------------------------------------------------------------------------------- the good build

def test_splits_counts_and_labels(cropped):
    written, builder, examples = cropped
    rows = written["rows"]
    assert written["num_samples"] == len(rows) == 65 and len(examples) == 65
    per_subject = collections.Counter(r["subject"] for r in rows)
    assert {s: i.num_examples for s, i in builder.info.splits.items()} == {
        f"subject_casme2_{s}": n for s, n in per_subject.items()}
    assert collections.Counter(e["emotion"].decode() for _, e in examples.values()) == {
        "others": 25, "disgust": 16, "happiness": 8, "repression": 7, "surprise": 6, "sadness": 2, "fear": 1}
    megc = {"disgust": 0, "repression": 0, "happiness": 1, "surprise": 2}
    for row in rows:
        split, example = examples[f"casme2/{row['subject']}/{row['clip']}"]
        assert split == f"subject_casme2_{row['subject']}"
        assert example["subject"].decode() == f"casme2/{row['subject']}"
        assert example["dataset"].decode() == "casme2" and example["fps"] == 200.0
        assert example["label_3class"] == megc.get(row["emotion"], -1)   # fear/sadness/others: -1
        assert list(example["aus"]) == archive.au_vector(row["aus"])
    # Irregular file names just work.
    for clip in ("sub03/EP01_2", "sub09/EP09f", "sub07/EP06_02_01"):
        assert f"casme2/{clip}" in examples
    # AU strings with L/R prefixes (`L10`, `R1+R2`): the numbers count.
    sided = [r for r in rows if re.search(r"[LR]\d", r["aus"])]
    assert len(sided) >= 5
    for row in sided:
        aus = examples[f"casme2/{row['subject']}/{row['clip']}"][1]["aus"]
        first = int(re.search(r"[LR](\d+)", row["aus"]).group(1))
        assert aus[taxonomy.AU_VOCAB.index(first)] == 1


def test_key_frames_match_the_frames_on_disk(cropped):
    written, _, examples = cropped
    root = written["root"] / "Cropped"
    for row in written["rows"]:
        _, example = examples[f"casme2/{row['subject']}/{row['clip']}"]
        frames = example["frames"]
        assert len(frames) == row["num_frames"] == row["offset"] - row["onset"] + 1
        assert (example["onset"], example["apex"], example["offset"]) == (
            0, row["apex"] - row["onset"], row["offset"] - row["onset"])
        if "fill_missing" in row["fixes"]:
            continue
        folder = root / row["subject"] / row["clip"]
        # Cropped JPEGs are stored unchanged, in numeric (not string) order.
        assert frames[0] == (folder / f"reg_img{row['onset']}.jpg").read_bytes()
        assert frames[-1] == (folder / f"reg_img{row['offset']}.jpg").read_bytes()


def test_quirks_fixed_and_recorded(cropped):
    written, builder, examples = cropped
    metadata = builder.info.metadata
    assert metadata["excluded"] == [] and metadata["label_schemes"] == ["casme2_7", "casme2_5", "megc3"]
    fixes = builder_testing.fixes_by_clip(builder)
    # ApexFrame "/" -> midpoint, recorded.
    assert len(written["apex_slash_rows"]) == 7
    for row in written["rows"]:
        if row["apex_cell"] == "/":
            assert any("apex = (onset + offset) // 2" in f for f in fixes[f"casme2/{row['subject']}/{row['clip']}"])
    # meb row 60: offset 191 -> 91.
    row60 = written["row_offset_fix"]
    assert row60["row"] == 60 and (row60["annotated"], row60["fixed"]) == (191, 91)
    assert any("offset 191 -> 91" in f for f in fixes[f"casme2/{row60['clip']}"])
    _, example = examples[f"casme2/{row60['clip']}"]
    assert len(example["frames"]) == 91 - 76 + 1
    # Cropped/sub16/EP01_08 misses a frame: filled with the previous one, recorded.
    missing = written["missing_frames"]
    assert missing["clip"] == "sub16/EP01_08"
    assert any("missing on disk: filled with the previous frame" in f for f in fixes["casme2/sub16/EP01_08"])
    row = next(r for r in written["rows"] if (r["subject"], r["clip"]) == ("sub16", "EP01_08"))
    frames = examples["casme2/sub16/EP01_08"][1]["frames"]
    k = missing["frames"][0] - row["onset"]
    assert len(frames) == row["num_frames"] and frames[k] == frames[k - 1]


def test_load_corpus_and_label_schemes(cropped, tmp_path):
    written, _, _ = cropped
    corpus = load_corpus("casme2/cropped", data_dir=str(tmp_path), manual_dir=str(written["root"]))
    assert len(corpus) == 65 and len(set(corpus.subject)) == 10
    labels7 = corpus.labels("casme2_7")
    assert (labels7 >= 0).all()
    assert ((corpus.labels("casme2_5") == -1) == np.isin(corpus.emotion, ["fear", "sadness"])).all()
    assert corpus.frames(0).shape[1:] == (32, 32, 3)


# ------------------------------------------------------------------------------- reader options

def test_meb_apex_estimates_and_row_index_rule(tmp_path):
    written = fixture.write_casme2(tmp_path / "m")
    records, excluded = casme2.read_records(tmp_path / "m", "cropped", missing_apex="meb")
    assert excluded == [] and len(records) == 65
    for row in written["rows"]:
        if row["apex_cell"] == "/":
            assert records[row["row"]].apex == row["meb_apex"] == fixture.MEB_MISSING_APEX[row["row"]]
    assert records[60].apex == 78 and records[60].offset == 91
    # A clean archive: row 60's content shows no quirk, so nothing is changed.
    clean = fixture.write_casme2(tmp_path / "clean", quirks=False)
    records, _ = casme2.read_records(tmp_path / "clean", "cropped")
    assert records[60].offset == clean["rows"][60]["offset"] and records[60].fixes == []
    assert all(r.apex is not None and r.fixes == [] for r in records)


def test_nested_cropped_other_coding_file_and_subject_forms(tmp_path):
    samples = [{"subject": "sub01", "clip": "EP02_01f", "emotion": "happiness"},
               {"subject": "02", "clip": "EP06_02_01", "emotion": "Repression"},
               {"subject": 26, "clip": "EP09f", "emotion": "others"}]
    fixture.write_casme2(tmp_path, samples=samples, nested_cropped=True, annotation="CASME2-coding-20190701.xlsx")
    assert (tmp_path / "Cropped" / "Cropped" / "sub01" / "EP02_01f").is_dir()
    records, _ = casme2.read_records(tmp_path, "cropped")
    assert [(r.subject, r.clip, r.emotion) for r in records] == [
        ("sub01", "EP02_01f", "happiness"), ("sub02", "EP06_02_01", "repression"), ("sub26", "EP09f", "others")]
    assert records[0].folder == tmp_path / "Cropped" / "Cropped" / "sub01" / "EP02_01f"


def test_megc_samples_are_written_exactly(tmp_path):
    gt = [("sub01", "EP02_01f", "happiness"), ("sub16", "EP01_08", "disgust"), ("sub03", "EP01_2", "surprise")]
    written = fixture.write_casme2(tmp_path, samples=[{"subject": s, "clip": c, "emotion": e} for s, c, e in gt])
    assert [(r["subject"], r["clip"], r["emotion"]) for r in written["rows"]] == gt
    records, _ = casme2.read_records(tmp_path, "cropped")
    assert [(r.subject, r.clip) for r in records] == [(s, c) for s, c, _ in gt]
    assert records[1].fill_missing and written["missing_frames"]["clip"] == "sub16/EP01_08"


# ----------------------------------------------------------------------------------- bad input

_SMALL = [{"subject": 1, "clip": "EP02_01f", "emotion": "happiness"},
          {"subject": 1, "clip": "EP19_05f", "emotion": "disgust"},
          {"subject": 2, "clip": "EP01_11f", "emotion": "repression"}]


@pytest.fixture
def small(tmp_path):
    written = fixture.write_casme2(tmp_path / "manual", samples=_SMALL, quirks=False)
    return written, tmp_path


def _edit_coding_file(path, row, column, value):
    builder_testing.set_cell(path, row + 2, column + 1, value)   # row 0 = sheet row 2


def test_missing_manual_dir_prints_the_instructions(tmp_path):
    with pytest.raises(AssertionError, match="fu.psych.ac.cn/CASME/casme2-en.php") as info:
        _build(tmp_path / "nowhere", tmp_path / "tfds")
    assert "CASME2-coding-20140508.xlsx" in str(info.value)


def test_missing_coding_file(small):
    written, tmp = small
    written["annotation"].unlink()
    with pytest.raises(ArchiveError, match=r"casme2: no CASME II coding file .*CASME2-coding-20140508.xlsx"):
        _build(written["root"], tmp / "tfds")


def test_missing_variant_folder(small):
    written, tmp = small
    with pytest.raises(ArchiveError, match=r"casme2: no frame folder for variant 'raw'.*CASME2-RAW"):
        _build(written["root"], tmp / "tfds", "raw")


def test_missing_clip_folder_names_row_and_folder(small):
    written, tmp = small
    shutil.rmtree(written["root"] / "Cropped" / "sub01" / "EP19_05f")
    with pytest.raises(ArchiveError, match=r"casme2.*CASME2-coding-20140508.xlsx, sheet 'Sheet1' row 3 "
                                           r"\(clip EP19_05f\): clip folder .*sub01/EP19_05f does not exist"):
        _build(written["root"], tmp / "tfds")


def test_missing_frames_name_the_frames(small):
    written, tmp = small
    row = written["rows"][2]
    middle = (row["onset"] + row["offset"]) // 2
    (written["root"] / "Cropped" / "sub02" / "EP01_11f" / f"reg_img{middle}.jpg").unlink()
    with pytest.raises(ArchiveError, match=rf"row 4 \(clip EP01_11f\): frames {middle} of onset..offset"):
        _build(written["root"], tmp / "tfds")


def test_unreadable_image_is_named(small):
    written, tmp = small
    row = written["rows"][0]
    bad = written["root"] / "Cropped" / "sub01" / "EP02_01f" / f"reg_img{row['onset']}.jpg"
    bad.write_bytes(b"")
    with pytest.raises(ArchiveError, match=rf"casme2.*cannot read image .*reg_img{row['onset']}.jpg"):
        _build(written["root"], tmp / "tfds")


def test_unknown_emotion_names_file_row_and_value(small):
    written, tmp = small
    _edit_coding_file(written["annotation"], 1, 8, "joy")
    with pytest.raises(ArchiveError, match=r"casme2: CASME2-coding-20140508.xlsx, sheet 'Sheet1' row 3: "
                                           r"unknown emotion 'joy'; expected one of"):
        _build(written["root"], tmp / "tfds")


def test_onset_after_offset(small):
    written, tmp = small
    row = written["rows"][2]
    _edit_coding_file(written["annotation"], 2, 3, row["offset"] + 5)
    with pytest.raises(ArchiveError, match=r"row 4 \(clip EP01_11f\): onset .* are not in order"):
        _build(written["root"], tmp / "tfds")


def test_non_numeric_frame_cell(small):
    written, tmp = small
    _edit_coding_file(written["annotation"], 0, 5, "end")
    with pytest.raises(ArchiveError, match=r"row 2: OffsetFrame is 'end', expected an integer frame number"):
        _build(written["root"], tmp / "tfds")


def test_skip_bad_samples_lists_exclusions(small):
    written, tmp = small
    shutil.rmtree(written["root"] / "Cropped" / "sub01" / "EP19_05f")
    _edit_coding_file(written["annotation"], 2, 8, "joy")
    config = casme2.Casme2Config(name="cropped_skip", variant="cropped", skip_bad_samples=True)
    builder = _build(written["root"], tmp / "tfds", config)
    excluded = {item["clip"]: item for item in builder.info.metadata["excluded"]}
    assert set(excluded) == {"casme2/sub01/EP19_05f", "casme2/sub02/EP01_11f"}
    assert "does not exist" in excluded["casme2/sub01/EP19_05f"]["reason"]
    assert "unknown emotion 'joy'" in excluded["casme2/sub02/EP01_11f"]["reason"]
    assert excluded["casme2/sub02/EP01_11f"]["where"].endswith("row 4")
    assert sum(s.num_examples for s in builder.info.splits.values()) == 1


# ------------------------------------------------------------------------------------ raw variants

def test_raw_variants_align_faces_and_take_onset_to_offset(tmp_path):
    samples = [{"subject": 1, "clip": "EP02_01f", "emotion": "happiness", "onset": 3, "apex": 4, "offset": 6},
               {"subject": 4, "clip": "EP12_01f", "emotion": "surprise", "onset": 2, "apex": 2, "offset": 4}]
    written = fixture.write_casme2(tmp_path / "m", samples=samples, variant="all", quirks=False)
    assert len(list((tmp_path / "m" / "CASME2-RAW" / "sub01" / "EP02_01f").iterdir())) == 6 + 2   # img1..img8
    for variant in ("raw_selected", "raw"):
        config = casme2.Casme2Config(name=f"{variant}_64", variant=variant, align=True, image_size=64)
        builder = _build(written["root"], tmp_path / "tfds", config)
        examples = builder_testing.examples(builder)
        _, example = examples["casme2/sub01/EP02_01f"]
        assert (len(example["frames"]), example["onset"], example["apex"], example["offset"]) == (4, 0, 1, 3)
        assert sum(builder.info.metadata["alignment"].values()) == 2
        import cv2

        image = cv2.imdecode(np.frombuffer(example["frames"][0], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (64, 64, 3)


def test_raw_without_a_face_is_an_error_or_an_exclusion(tmp_path):
    import cv2

    written = fixture.write_casme2(tmp_path / "m", samples=_SMALL, variant="raw_selected", quirks=False)
    folder = tmp_path / "m" / "CASME2_RAW_selected" / "sub01" / "EP19_05f"
    for path in folder.iterdir():
        cv2.imwrite(str(path), np.full((168, 224, 3), 120, np.uint8))
    config = casme2.Casme2Config(name="raw_selected_64", variant="raw_selected", align=True, image_size=64)
    with pytest.raises(ArchiveError, match=r"casme2.*row 3 \(clip EP19_05f\): no face found on the onset frame"):
        _build(written["root"], tmp_path / "tfds", config)
    config = casme2.Casme2Config(name="raw_selected_64_skip", variant="raw_selected", align=True, image_size=64,
                                 skip_bad_samples=True)
    builder = _build(written["root"], tmp_path / "tfds2", config)
    assert [e["clip"] for e in builder.info.metadata["excluded"]] == ["casme2/sub01/EP19_05f"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 2


# ----------------------------------------------------------------------- TFDS DatasetBuilderTestCase

if importlib.util.find_spec("tensorflow") is not None:
    class Casme2DatasetBuilderTest(builder_testing.FixtureExampleDir, tfds.testing.DatasetBuilderTestCase):
        """TFDS's own builder checks (registration, info, build, as_dataset, reload) on a fixture."""
        DATASET_CLASS = casme2.Builder
        BUILDER_CONFIG_NAMES_TO_TEST = ["cropped"]
        SPLITS = {"subject_casme2_sub01": 2, "subject_casme2_sub02": 1}
        SKIP_CHECKSUMS = True

        @staticmethod
        def write_fixture(folder):
            fixture.write_casme2(folder, samples=_SMALL, quirks=False)
