"""CASME (I) builder (tfds_builders/casme) on fixture archives in meb's layout
(mer_jax/data/synthetic/archives/casme.py): splits, counts, labels, key frames against the written
frames (padded and unpadded names), meb's row fixes applied only where the disk shows the mistake,
the AU column found by header (or absent), every bad-input case and the raw_selected alignment."""
import collections
import importlib.util
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import builder_testing
import tfds_builders  # noqa: F401  (registers the builders)
from mer_jax.data import archive, taxonomy
from mer_jax.data.archive import ArchiveError
from mer_jax.data.corpus import load_corpus
from mer_jax.data.synthetic.archives import casme as fixture
from tfds_builders.casme import casme_dataset_builder as casme
from tfds_builders.corpus_builder import CorpusConfig


def _build(manual_dir, data_dir, config="cropped", **overrides):
    return builder_testing.build(casme.Builder, manual_dir, data_dir, config, **overrides)


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    root = tmp_path_factory.mktemp("casme")
    written = fixture.write_casme(root / "manual")
    builder = _build(root / "manual", root / "tfds")
    return written, builder, builder_testing.examples(builder)


def test_splits_counts_labels_and_aus(cropped):
    written, builder, examples = cropped
    rows = written["rows"]
    assert len(rows) == len(examples) == 142
    per_subject = collections.Counter(r["subject"] for r in rows)
    assert {s: i.num_examples for s, i in builder.info.splits.items()} == {
        f"subject_casme_{s}": n for s, n in per_subject.items()}
    counts = collections.Counter(e["emotion"].decode() for _, e in examples.values())
    assert counts == written["emotion_counts"] and set(counts) == set(taxonomy.LABEL_SCHEMES["casme_8"])
    for row in rows:
        split, example = examples[f"casme/{row['subject']}/{row['clip']}"]
        assert split == f"subject_casme_{row['subject']}" and example["fps"] == 60.0
        assert example["label_3class"] == taxonomy.megc3_label(row["emotion"])
        assert list(example["aus"]) == archive.au_vector(row["aus"])
    tense = next(e for _, e in examples.values() if e["emotion"] == b"tense")
    assert tense["label_3class"] == -1     # tense is not part of MEGC 3-class
    metadata = builder.info.metadata
    assert metadata["has_aus"] is True and metadata["label_schemes"] == ["casme_8", "megc3"]
    assert metadata["excluded"] == []


def test_key_frames_and_padded_frame_names(cropped):
    written, _, examples = cropped
    for row in written["rows"]:
        _, example = examples[f"casme/{row['subject']}/{row['clip']}"]
        assert len(example["frames"]) == row["num_frames"] == row["offset"] - row["onset"] + 1
        assert (example["onset"], example["apex"], example["offset"]) == (
            0, row["apex"] - row["onset"], row["offset"] - row["onset"])
        folder = written["root"] / "Cropped" / row["subject"] / row["clip"]
        for k in (0, -1):
            number = row["onset"] if k == 0 else row["offset"]
            name = fixture.frame_name(row["clip"], number, row["row"], cropped=True)
            assert example["frames"][k] == (folder / name).read_bytes()
    late = written["rows"][100]
    assert fixture.frame_name(late["clip"], 5, 100, cropped=True).endswith("-005.jpg")


def test_meb_row_fixes_applied_and_recorded(cropped):
    written, builder, examples = cropped
    fixes = {item["clip"]: item["fix"] for item in builder.info.metadata["fixes"]}
    assert sorted(written["row_fixes"]) == [40, 42, 43, 54, 140]
    for i, quirk in written["row_fixes"].items():
        clip = f"casme/{quirk['clip']}"
        assert f"data row {i}" in fixes[clip]
        onset, apex, offset = quirk["fixed"]
        example = examples[clip][1]
        assert (len(example["frames"]), example["apex"]) == (offset - onset + 1, apex - onset)
    assert fixes[f"casme/{written['row_fixes'][40]['clip']}"] == (
        "onset 10 -> 100, offset 14 -> 149 (meb: mistake in file, data row 40)")
    assert len(fixes) == 5


def test_row_fix_needs_the_disk_to_show_the_mistake(tmp_path):
    clean = fixture.write_casme(tmp_path / "clean", quirks=False)
    records, _ = casme.read_records(tmp_path / "clean", "cropped")
    assert all(r.fixes == [] for r in records)
    assert (records[40].onset, records[40].offset) == (clean["rows"][40]["onset"], clean["rows"][40]["offset"])
    # The disk agrees with neither the sheet (offset 4) nor meb's value (40): nothing is changed, and
    # the base builder then reports the sheet's range against the disk.
    odd = fixture.write_casme(tmp_path / "odd")
    row = odd["rows"][54]
    (tmp_path / "odd" / "Cropped" / row["subject"] / row["clip"] / f"reg_{row['clip']}-40.jpg").unlink()
    records, _ = casme.read_records(tmp_path / "odd", "cropped")
    assert records[54].offset == 4 and records[54].fixes == []
    assert records[140].offset == 142   # the other fixes still apply


def test_au_column_by_header_or_none(tmp_path):
    samples = [{"subject": 1, "clip": "EP01_5", "emotion": "Tense"}, {"subject": "02", "clip": "EP03_2",
                                                                      "emotion": "amusement"}]
    fixture.write_casme(tmp_path / "a", samples=samples, au_header="Action Units")
    records, _ = casme.read_records(tmp_path / "a", "cropped")
    assert [(r.subject, r.emotion) for r in records] == [("sub01", "tense"), ("sub02", "happiness")]
    assert all(r.aus is not None and sum(r.aus) > 0 for r in records)
    written = fixture.write_casme(tmp_path / "b", samples=samples, au_header=None)
    builder = _build(written["root"], tmp_path / "tfds")
    assert builder.info.metadata["has_aus"] is False
    assert all(not e["aus"].any() for _, e in builder_testing.examples(builder).values())
    assert casme.au_column(("Subject", "AU", "Emotion")) == "AU"
    assert casme.au_column(("Subject", "column_7", "Emotion")) is None


def test_load_corpus(cropped, tmp_path):
    written, _, _ = cropped
    corpus = load_corpus("casme/cropped", data_dir=str(tmp_path), manual_dir=str(written["root"]))
    assert len(corpus) == 142 and (corpus.labels("casme_8") >= 0).all()
    assert ((corpus.labels("megc3") == -1) == (corpus.emotion == "tense")).all()


# ----------------------------------------------------------------------------------- bad input

_SMALL = [{"subject": 1, "clip": "EP01_5", "emotion": "disgust"},
          {"subject": 1, "clip": "EP02_1", "emotion": "tense"},
          {"subject": 3, "clip": "EP07_2", "emotion": "surprise"}]


@pytest.fixture
def small(tmp_path):
    return fixture.write_casme(tmp_path / "manual", samples=_SMALL, quirks=False), tmp_path


def _edit(path, row, column, value):
    builder_testing.set_cell(path, row + 2, column + 1, value)   # row 0 = sheet row 2


def test_missing_manual_dir_prints_the_instructions(tmp_path):
    with pytest.raises(AssertionError, match="casme.psych.ac.cn/casme/e1"):
        _build(tmp_path / "nowhere", tmp_path / "tfds")


def test_missing_annotation_and_variant_folder(small):
    written, tmp = small
    with pytest.raises(ArchiveError, match=r"casme: no frame folder for variant 'raw_selected'"):
        _build(written["root"], tmp / "tfds", "raw_selected")
    written["annotation"].unlink()
    with pytest.raises(ArchiveError, match=r"casme: no CASME annotation file .*casme.xlsx"):
        _build(written["root"], tmp / "tfds")


def test_missing_clip_folder(small):
    written, tmp = small
    shutil.rmtree(written["root"] / "Cropped" / "sub01" / "EP02_1")
    with pytest.raises(ArchiveError, match=r"casme: casme.xlsx, sheet 'Sheet1' row 3 \(clip EP02_1\): "
                                           r"clip folder .*sub01/EP02_1 does not exist"):
        _build(written["root"], tmp / "tfds")


def test_missing_frames(small):
    written, tmp = small
    row = written["rows"][2]
    (written["root"] / "Cropped" / "sub03" / "EP07_2" / f"reg_EP07_2-{row['onset'] + 1}.jpg").unlink()
    with pytest.raises(ArchiveError, match=rf"row 4 \(clip EP07_2\): frames {row['onset'] + 1} of onset..offset"):
        _build(written["root"], tmp / "tfds")


@pytest.mark.parametrize("content", [b"", b"\xff\xd8 not a jpeg"], ids=["empty", "garbage"])
def test_unreadable_image(small, content):
    written, tmp = small
    row = written["rows"][0]
    bad = written["root"] / "Cropped" / "sub01" / "EP01_5" / f"reg_EP01_5-{row['offset']}.jpg"
    bad.write_bytes(content)
    with pytest.raises(ArchiveError, match=rf"casme: cannot read image {bad}"):
        _build(written["root"], tmp / "tfds")


def test_unknown_emotion(small):
    written, tmp = small
    _edit(written["annotation"], 2, 8, "anger")
    with pytest.raises(ArchiveError, match=r"casme: casme.xlsx, sheet 'Sheet1' row 4: unknown emotion 'anger'"):
        _build(written["root"], tmp / "tfds")


def test_onset_after_offset(small):
    written, tmp = small
    row = written["rows"][1]
    _edit(written["annotation"], 1, 4, row["offset"] + 3)   # ApexF1 after the offset
    with pytest.raises(ArchiveError, match=r"row 3 \(clip EP02_1\): onset .* are not in order"):
        _build(written["root"], tmp / "tfds")


def test_skip_bad_samples_lists_exclusions(small):
    written, tmp = small
    shutil.rmtree(written["root"] / "Cropped" / "sub03" / "EP07_2")
    _edit(written["annotation"], 0, 3, "x")
    config = CorpusConfig(name="cropped_skip", variant="cropped", skip_bad_samples=True)
    builder = _build(written["root"], tmp / "tfds", config)
    reasons = {e["clip"]: e["reason"] for e in builder.info.metadata["excluded"]}
    assert set(reasons) == {"casme/sub01/EP01_5", "casme/sub03/EP07_2"}
    assert "OnsetF is 'x'" in reasons["casme/sub01/EP01_5"] and "does not exist" in reasons["casme/sub03/EP07_2"]
    assert sum(s.num_examples for s in builder.info.splits.values()) == 1


# ------------------------------------------------------------------------------------- raw_selected

def test_raw_selected_aligns_or_reports_no_face(tmp_path):
    import cv2

    written = fixture.write_casme(tmp_path / "m", samples=_SMALL, variant="raw_selected", quirks=False)
    config = CorpusConfig(name="raw_selected_64", variant="raw_selected", align=True, image_size=64)
    builder = _build(written["root"], tmp_path / "tfds", config)
    examples = builder_testing.examples(builder)
    assert len(examples) == 3 and sum(builder.info.metadata["alignment"].values()) == 3
    frame = cv2.imdecode(np.frombuffer(examples["casme/sub01/EP01_5"][1]["frames"][0], np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (64, 64, 3)
    # (A subject whose every clip fails alignment would leave its split empty, which TFDS refuses:
    # the base builder plans splits before it aligns; sub01 keeps another clip.)
    for path in (tmp_path / "m" / "CASME_raw_selected" / "sub01" / "EP02_1").iterdir():
        cv2.imwrite(str(path), np.full((168, 224, 3), 90, np.uint8))
    config = CorpusConfig(name="raw_selected_64b", variant="raw_selected", align=True, image_size=64)
    with pytest.raises(ArchiveError, match=r"casme: .*row 3 \(clip EP02_1\): no face found"):
        _build(written["root"], tmp_path / "tfds2", config)
    config = CorpusConfig(name="raw_selected_64c", variant="raw_selected", align=True, image_size=64,
                          skip_bad_samples=True)
    builder = _build(written["root"], tmp_path / "tfds3", config)
    assert [e["clip"] for e in builder.info.metadata["excluded"]] == ["casme/sub01/EP02_1"]


# ----------------------------------------------------------------------- TFDS DatasetBuilderTestCase

if importlib.util.find_spec("tensorflow") is not None:
    class CasmeDatasetBuilderTest(builder_testing.FixtureExampleDir, tfds.testing.DatasetBuilderTestCase):
        """TFDS's own builder checks (registration, info, build, as_dataset, reload) on a fixture."""
        DATASET_CLASS = casme.Builder
        BUILDER_CONFIG_NAMES_TO_TEST = ["cropped"]
        SPLITS = {"subject_casme_sub01": 2, "subject_casme_sub03": 1}
        SKIP_CHECKSUMS = True

        @staticmethod
        def write_fixture(folder):
            fixture.write_casme(folder, samples=_SMALL, quirks=False)
