"""The shared corpus-builder base: skipped bad samples never leave an empty subject split behind."""
import builder_testing
from mer_jax.data.synthetic.archives.smic import write_smic
from tfds_builders import smic


def test_subject_whose_only_clip_is_unreadable_gets_no_split(tmp_path):
    info = write_smic(tmp_path / "manual", samples=[{"subject": "s1", "clip": "s1_ne_01"},
                                                    {"subject": "s1", "clip": "s1_po_01"},
                                                    {"subject": "s2", "clip": "s2_sur_01"}], quirks=False)
    bad = next(c for c in info["clips"] if c["clip"] == "s2_sur_01")
    frame = sorted(bad["folder"].iterdir())[1]
    frame.write_bytes(b"not an image")
    builder = builder_testing.build(smic.Builder, tmp_path / "manual", tmp_path / "tfds", "hs", name="hs_skip",
                                    skip_bad_samples=True)
    assert sorted(builder.info.splits) == ["subject_smic_s1"]
    assert builder.info.splits["subject_smic_s1"].num_examples == 2
    [excluded] = builder.info.metadata["excluded"]
    assert excluded["clip"] == "smic/s2/s2_sur_01" and frame.name in excluded["reason"]
