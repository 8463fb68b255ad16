"""The MEGC2019 composite builder on a fixture with the full official membership (no licensed data)."""
import collections
import shutil

import numpy as np
import pytest

import builder_testing
import tfds_builders  # noqa: F401  (registers the builders)
from mer_jax.data.archive import ArchiveError
from mer_jax.data.corpus import load_corpus
from mer_jax.data.synthetic.archives.megc2019_cde import write_megc2019_cde
from tfds_builders import megc2019_cde


def _build(manual_dir, data_dir, config="cropped"):
    return builder_testing.build(megc2019_cde.Builder, manual_dir, data_dir, config)


def _copy_with_ground_truth(root, tmp_path, ground_truth: str):
    """A copy of the fixture archive in tmp_path/manual, with `ground_truth` as its combined_3class_gt.csv."""
    manual = tmp_path / "manual"
    shutil.copytree(root / "manual", manual)
    (manual / "combined_3class_gt.csv").write_text(ground_truth)
    return manual


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("megc2019_cde")
    return write_megc2019_cde(root / "manual", quirks=True), root


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The full official membership, without SMIC's missing folder: all 442 samples."""
    root = tmp_path_factory.mktemp("megc2019_cde_full")
    info = write_megc2019_cde(root / "manual", quirks=False)
    builder = _build(root / "manual", root / "tfds")
    corpus = load_corpus("megc2019_cde/cropped", data_dir=str(root / "tfds"))
    return info, builder, corpus


def test_full_membership_reproduces_the_official_counts(full):
    info, builder, corpus = full
    assert len(corpus) == 442
    assert len(set(corpus.subject)) == 68 == len(builder.info.splits)
    assert collections.Counter(corpus.labels("megc3").tolist()) == {0: 250, 1: 109, 2: 83}
    assert collections.Counter(corpus.dataset.tolist()) == {"smic": 164, "casme2": 145, "samm": 133}
    per_dataset_subjects = {d: len(set(corpus.subject[corpus.dataset == d])) for d in ("smic", "casme2", "samm")}
    assert per_dataset_subjects == {"smic": 16, "casme2": 24, "samm": 28}
    # Subject ids are unique across datasets: CASME II sub01, SMIC s1 and SAMM 006 are different people.
    assert {"casme2/sub01", "smic/s1", "samm/006"} <= set(corpus.subject)
    # The largest subjects (corpora.md section 8).
    sizes = collections.Counter(corpus.subject.tolist())
    assert (sizes["casme2/sub17"], sizes["smic/s3"], sizes["smic/s20"], sizes["samm/011"]) == (31, 39, 22, 20)


def test_membership_comes_from_the_ground_truth(full):
    info, builder, corpus = full
    metadata = builder.info.metadata
    assert metadata["excluded"] == []
    assert sorted(metadata["not_in_ground_truth"]) == info["outside"]
    # Every stored class is the ground truth's, row by row.
    gt = {}
    for database, subject, filename, label in info["rows"]:
        gt[(database, int("".join(c for c in subject if c.isdigit())),
            filename.lower().replace("s0", "s"))] = label
    for i in range(len(corpus)):
        database, subject, clip = corpus.clip[i].split("/")
        key = (database, int("".join(c for c in subject if c.isdigit())), clip.lower().replace("s0", "s"))
        assert gt[key] == corpus.label_3class[i], corpus.clip[i]
    # Key frames point inside each clip.
    assert np.all((0 <= corpus.onset) & (corpus.onset <= corpus.apex) & (corpus.apex <= corpus.offset))


def test_a_member_missing_from_the_archive_is_listed(archive, tmp_path):
    info, root = archive  # quirks: SMIC_all_cropped lacks s18_sur_03
    manual = root / "manual"
    subset = [r for r in info["rows"] if r[1] in ("s18", "sub17", "6")]
    (manual / "combined_3class_gt.csv").write_text("".join(f"{d},{s},{f},{c}\r\n" for d, s, f, c in subset))
    try:
        builder = _build(manual, tmp_path)
    finally:
        (manual / "combined_3class_gt.csv").unlink()
    excluded = builder.info.metadata["excluded"]
    assert [e["clip"].split("/")[-1] for e in excluded] == ["s18_sur_03"]
    assert "combined_3class_gt.csv row" in excluded[0]["where"]
    total = sum(split.num_examples for split in builder.info.splits.values())
    assert total == len(subset) - 1


def test_ground_truth_row_without_annotation_names_the_row(archive, tmp_path):
    info, root = archive
    manual = _copy_with_ground_truth(root, tmp_path, "casme2,sub01,EP02_01f,1\r\ncasme2,sub01,EP77_07,0\r\n")
    with pytest.raises(ArchiveError, match=r"combined_3class_gt.csv row 2 .*EP77_07"):
        _build(manual, tmp_path / "tfds")


def test_class_disagreement_uses_the_ground_truth_and_is_recorded(archive, tmp_path):
    info, root = archive
    manual = _copy_with_ground_truth(root, tmp_path, "casme2,sub01,EP02_01f,2\r\nsamm,6,006_1_2,0\r\n")
    builder = _build(manual, tmp_path / "tfds")
    corpus = load_corpus("megc2019_cde/cropped", data_dir=str(tmp_path / "tfds"))
    assert dict(zip(corpus.clip, corpus.label_3class)) == {"casme2/sub01/EP02_01f": 2, "samm/006/006_1_2": 0}
    fixes = [f for f in builder.info.metadata["fixes"] if "ground truth" in f["fix"]]
    assert [f["clip"] for f in fixes] == ["casme2/sub01/EP02_01f"]


def test_bad_ground_truth_and_missing_part(archive, tmp_path):
    info, root = archive
    manual = _copy_with_ground_truth(root, tmp_path, "casme2,sub01,EP02_01f,5\r\n")
    with pytest.raises(ArchiveError, match=r"row 1: class '5'"):
        _build(manual, tmp_path / "a")
    (manual / "combined_3class_gt.csv").write_text("casme2,sub01,EP02_01f,1\r\ncasme2,sub1,EP02_01f,1\r\n")
    with pytest.raises(ArchiveError, match="row 2 repeats"):
        _build(manual, tmp_path / "b")
    (manual / "combined_3class_gt.csv").unlink()
    shutil.rmtree(manual / "samm")
    with pytest.raises(ArchiveError, match="no folder .*samm"):
        _build(manual, tmp_path / "c")


def test_missing_manual_dir_prints_the_instructions(tmp_path):
    with pytest.raises(AssertionError, match="manual_dir/casme2/"):
        _build(tmp_path / "absent", tmp_path / "tfds")
