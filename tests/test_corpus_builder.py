"""The shared corpus-builder base: skipped bad samples never leave an empty subject split behind."""
import dataclasses

import tensorflow_datasets as tfds

import tfds_builders  # noqa: F401  (registers the builders)
from mer_jax.data.synthetic.archives.smic import write_smic


def test_subject_whose_only_clip_is_unreadable_gets_no_split(tmp_path):
    info = write_smic(tmp_path / "manual", samples=[{"subject": "s1", "clip": "s1_ne_01"},
                                                    {"subject": "s1", "clip": "s1_po_01"},
                                                    {"subject": "s2", "clip": "s2_sur_01"}], quirks=False)
    bad = next(c for c in info["clips"] if c["clip"] == "s2_sur_01")
    frame = sorted(bad["folder"].iterdir())[1]
    frame.write_bytes(b"not an image")
    config = dataclasses.replace(tfds.builder("smic/hs").builder_config, name="hs_skip", skip_bad_samples=True)
    builder = tfds.builder("smic", config=config, data_dir=str(tmp_path / "tfds"), file_format="array_record")
    builder.download_and_prepare(file_format="array_record",
                                 download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual")))
    assert sorted(builder.info.splits) == ["subject_smic_s1"]
    assert builder.info.splits["subject_smic_s1"].num_examples == 2
    [excluded] = builder.info.metadata["excluded"]
    assert excluded["clip"] == "smic/s2/s2_sur_01" and frame.name in excluded["reason"]
