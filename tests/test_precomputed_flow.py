"""`precomputed_flow`: the builder (both CSV formats, both image namings, bad inputs), its features, the
flow-only M3ENet and the STSTNet / Off-ApexNet baselines on it, and released per-fold weights."""
import json
import shutil

import jax
import numpy as np
import pandas as pd
import pytest
from flax import nnx

from configs import m3enet, offapexnet, ststnet
from mer_jax import experiment
from mer_jax.convert.torch_checkpoint import load_state_dict, write_state_dict
from mer_jax.convert.torch_weights import import_state_dict
from mer_jax.data import schema
from mer_jax.data.corpus import load_corpus
from mer_jax.data.synthetic.archives import precomputed_flow as archive
from mer_jax.features.precomputed_flow import PrecomputedFlowConfig, load_precomputed_flow
from mer_jax.models.ststnet import STSTNet

SUBJECTS = ["casme2/sub01", "casme2/sub02", "samm/006", "samm/007", "smic/s01", "smic/s02"]


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """The fixture archive's samples (flow computed once; other layouts are cheap copies)."""
    return archive.write_precomputed_flow_archive(tmp_path_factory.mktemp("pf_base"), with_apex=True)


def build(root, tmp_path, name="tfds"):
    return load_corpus("precomputed_flow", data_dir=str(tmp_path / name), manual_dir=str(root))


@pytest.fixture(scope="module")
def htnet_archive(samples, tmp_path_factory):
    """HTNet CSV (with apex), names with the space; built once for the run tests."""
    root = tmp_path_factory.mktemp("pf_htnet")
    archive.copy_archive(samples, root / "manual", csv_format="htnet", space_before_png=True, with_apex=True)
    return root / "manual", str(root / "tfds")


def flow_config(module, manual_dir, data_dir, arg=None, **train):
    config = module.get_config(arg)
    config.dataset.name = "precomputed_flow"
    config.dataset.manual_dir = manual_dir
    config.dataset.data_dir = data_dir
    config.train.progress = False
    for key, value in train.items():
        config.train[key] = value
    return config


@pytest.mark.parametrize("csv_format, space", [("htnet", True), ("htnet", False), ("gt", True), ("gt", False)])
def test_builder_reads_both_formats_and_namings(samples, tmp_path, csv_format, space):
    written = archive.copy_archive(samples, tmp_path / "manual", csv_format=csv_format, space_before_png=space,
                                   with_apex=True)
    assert all((s.image_path.name.endswith(" .png")) == space for s in written)
    corpus = build(tmp_path / "manual", tmp_path)
    assert corpus.kind == "flow" and corpus.encoded_frames is None and len(corpus) == len(samples) == 36
    assert sorted(set(corpus.subject.tolist())) == SUBJECTS
    assert corpus.metadata["csv_format"] == {"htnet": "htnet", "gt": "megc2019_gt"}[csv_format]
    assert corpus.metadata["excluded"] == [] and corpus.metadata["num_rows"] == 36
    by_clip = {s.clip: s for s in samples}
    assert sorted(corpus.clip.tolist()) == sorted(by_clip)
    for i, clip in enumerate(corpus.clip):
        sample = by_clip[clip]
        # stored unchanged; decoded in cv2.imread order (B, G, R = strain, v, u)
        np.testing.assert_array_equal(corpus.flow_image(i)[..., ::-1], sample.image)
        assert corpus.label_3class[i] == sample.label
        assert corpus.emotion[i] == ("negative", "positive", "surprise")[sample.label]
        assert corpus.apex[i] == (sample.apex if csv_format == "htnet" else -1)
        assert corpus.onset[i] == corpus.offset[i] == -1
        assert corpus.fps[i] == (100.0 if sample.dataset == "smic" else 200.0)
    assert not corpus.aus.any()
    np.testing.assert_array_equal(corpus.labels("megc3"), corpus.label_3class)
    with pytest.raises(ValueError, match="flow corpus"):
        corpus.frames(0)


def test_one_split_per_subject_and_identity(htnet_archive):
    import tensorflow_datasets as tfds

    manual, data_dir = htnet_archive
    corpus = load_corpus("precomputed_flow", data_dir=data_dir, manual_dir=str(manual))
    splits = tfds.builder("precomputed_flow", data_dir=data_dir).info.splits
    assert sorted(splits) == sorted(schema.subject_split_name(s) for s in SUBJECTS)
    assert all(splits[schema.subject_split_name(s)].num_examples == 6 for s in SUBJECTS)
    assert corpus.subject.tolist() == sorted(corpus.subject.tolist())
    # The fingerprint covers the flow bytes: another image gives another identity.
    changed = corpus.subset(np.ones(len(corpus), bool))
    changed.encoded_flow = [corpus.encoded_flow[1]] + corpus.encoded_flow[1:]
    assert changed.identity()["fingerprint"] != corpus.identity()["fingerprint"]
    assert corpus.subset(np.ones(len(corpus), bool)).identity() == corpus.identity()


def small_archive(samples, root, **kwargs):
    """Two subjects' samples (casme2/sub01 and samm/006) as a quick archive to break."""
    keep = [s for s in samples if s.subject in ("sub01", "006")]
    return archive.copy_archive(keep, root, **kwargs)


def test_missing_image_names_row_file_and_expected_path(samples, tmp_path):
    written = small_archive(samples, tmp_path / "manual")
    missing = written[7]
    missing.image_path.unlink()
    with pytest.raises(ValueError) as error:
        build(tmp_path / "manual", tmp_path)
    message = str(error.value)
    assert f"{archive.HTNET_CSV} line 9" in message   # header is line 1
    assert missing.filename in message and str(missing.image_path) in message


def test_unknown_label_names_the_row(samples, tmp_path):
    small_archive(samples, tmp_path / "manual", csv_format="gt")
    csv = tmp_path / "manual" / archive.GT_CSV
    lines = csv.read_bytes().split(b"\r\n")
    lines[3] = lines[3][:-1] + b"7"
    csv.write_bytes(b"\r\n".join(lines))
    with pytest.raises(ValueError, match=rf"{archive.GT_CSV} line 4 .*unknown label '7'"):
        build(tmp_path / "manual", tmp_path)


def test_orphan_image_is_listed_as_an_exclusion(samples, tmp_path):
    written = small_archive(samples, tmp_path / "manual", space_before_png=False)
    orphan = written[0].image_path.with_name("sub01_EP99_01f.png")
    shutil.copy(written[0].image_path, orphan)
    corpus = build(tmp_path / "manual", tmp_path)
    assert len(corpus) == len(written)
    assert corpus.metadata["excluded"] == [
        {"file": orphan.name, "reason": f"no row of {archive.HTNET_CSV} names this image"}]


@pytest.mark.parametrize("row, match", [
    ("casme2,sub01,EP01_01f", r"line 2 .*no 'label' column"),
    ("casme3,sub01,EP01_01f,1", r"line 2 .*unknown dataset 'casme3'"),
    ("samm,s6,006_1_1,0", r"line 2 .*subject 's6' is not a samm subject id"),
    ("casme2,sub01,EP01_01f,positive", r"line 2 .*unknown label 'positive'"),
])
def test_bad_rows(samples, tmp_path, row, match):
    small_archive(samples, tmp_path / "manual", csv_format="htnet")
    csv = tmp_path / "manual" / archive.HTNET_CSV
    header, *rows = csv.read_text().splitlines()
    csv.write_text("\n".join(["dataset,sub,filename_o,label", row, *rows]) + "\n")
    with pytest.raises(ValueError, match=match):
        build(tmp_path / "manual", tmp_path)


def test_unrecognised_csv_and_layout_errors(samples, tmp_path):
    small_archive(samples, tmp_path / "manual")
    csv = tmp_path / "manual" / archive.HTNET_CSV
    csv.write_text("name,emotion\nsub01_EP01_01f,happy\n")
    with pytest.raises(ValueError, match="cannot tell the label CSV's format"):
        build(tmp_path / "manual", tmp_path, "a")
    (tmp_path / "manual" / "other.csv").write_text("x\n")
    with pytest.raises(ValueError, match="exactly one label CSV"):
        build(tmp_path / "manual", tmp_path, "b")


def test_features_channel_order_scale_and_size(htnet_archive):
    manual, data_dir = htnet_archive
    corpus = load_corpus("precomputed_flow", data_dir=data_dir, manual_dir=str(manual))
    raw = load_precomputed_flow(corpus, PrecomputedFlowConfig(size=28, value_scale=1.0))["flow"]
    assert raw.shape == (36, 28, 28, 3) and raw.dtype == np.float32
    np.testing.assert_array_equal(raw[0], corpus.flow_image(0))          # cv2.imread order, 0..255
    rgb = load_precomputed_flow(corpus, PrecomputedFlowConfig(channel_order="rgb"))["flow"]
    np.testing.assert_allclose(rgb, raw[..., ::-1] / 255.0, rtol=1e-6)
    assert load_precomputed_flow(corpus, PrecomputedFlowConfig(size=14))["flow"].shape == (36, 14, 14, 3)


def test_feature_kind_and_model_input_mismatches(htnet_archive, tmp_path):
    manual, data_dir = htnet_archive
    config = flow_config(m3enet, str(manual), data_dir)
    config.features.kind = "keyframe_flow"
    with pytest.raises(ValueError, match="features.kind='keyframe_flow' needs a corpus of frames.*'precomputed_flow'"):
        experiment.load_inputs(config)
    config = flow_config(m3enet, str(manual), data_dir)
    config.model.input_size = 28
    with pytest.raises(ValueError, match="streams=flow"):   # the full M3ENet also needs frames
        experiment.train_and_evaluate(config, tmp_path)


def test_m3enet_flow_stream_ablation_runs(htnet_archive, tmp_path):
    """The issue's command: --config.model.streams=flow --config.model.input_size=28."""
    manual, data_dir = htnet_archive
    config = flow_config(m3enet, str(manual), data_dir, num_epochs=1, batch_size=32, fold_chunk=1)
    config.model.streams = "flow"
    config.model.input_size = 28
    config.augment.variants = 2
    # Leave-one-dataset-out keeps it to 3 folds, one after another (the fast choice on CPU).
    config.dataset.protocol = "lodo"
    config.mesh.fold_devices = 1
    assert config.features.size == 28   # one shared value
    results = experiment.train_and_evaluate(config, tmp_path)
    assert results["protocol"]["num_folds"] == 3 and [f["n"] for f in results["per_fold"]["folds"]] == [12] * 3
    assert set(results["per_dataset"]) == {"casme2", "samm", "smic"}


# STSTNet only with -m slow (10 s): Off-ApexNet runs the same precomputed-flow path by default
@pytest.mark.parametrize("module", [pytest.param(ststnet, marks=pytest.mark.slow), offapexnet])
def test_baselines_train_on_precomputed_flow(htnet_archive, tmp_path, module):
    manual, data_dir = htnet_archive
    config = flow_config(module, str(manual), data_dir, "smoke")
    results = experiment.train_and_evaluate(config, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["selection"] == "last" and saved["protocol"]["num_folds"] == 6
    assert saved["config"]["train"]["loss"] == "cross_entropy" and saved["config"]["train"]["schedule"] == "constant"
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == 36
    assert 0.0 <= results["uf1"] <= 1.0


def ststnet_state_dict(seed: int) -> dict:
    """Random weights in the PyTorch layout of christy1206/STSTNet `main.py` (K = 3)."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for i, c in enumerate((3, 5, 8), start=1):
        tensors[f"conv{i}.weight"] = rng.normal(0, 0.05, (c, 3, 3, 3)).astype(np.float32)
        tensors[f"conv{i}.bias"] = rng.normal(0, 0.1, c).astype(np.float32)
        tensors[f"bn{i}.weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        tensors[f"bn{i}.bias"] = rng.normal(0, 0.1, c).astype(np.float32)
        tensors[f"bn{i}.running_mean"] = rng.uniform(0, 20, c).astype(np.float32)
        tensors[f"bn{i}.running_var"] = rng.uniform(50, 200, c).astype(np.float32)
        tensors[f"bn{i}.num_batches_tracked"] = np.array(seed, np.int64)
    tensors["fc.weight"] = rng.normal(0, 0.2, (3, 400)).astype(np.float32)
    tensors["fc.bias"] = rng.normal(0, 0.1, 3).astype(np.float32)
    return tensors


def test_released_per_fold_weights(samples, tmp_path):
    # GT csv: SAMM subjects are written `6`, `7` and stored as samm/006, samm/007.
    archive.copy_archive(samples, tmp_path / "manual", csv_format="gt")
    weights = tmp_path / "weights"
    weights.mkdir()
    names = {"casme2/sub01": "sub01.pth", "casme2/sub02": "sub02.pth", "samm/006": "006.pth",
             "samm/007": "7.pth", "smic/s01": "s01.pth", "smic/s02": "s02.pth"}   # 7.pth: unpadded form
    for k, (subject, name) in enumerate(names.items()):
        write_state_dict(weights / name, ststnet_state_dict(k), format="legacy" if k % 2 else "zip")
    config = flow_config(ststnet, str(tmp_path / "manual"), str(tmp_path / "tfds"))
    config.init.per_fold_weights = str(weights)
    results = experiment.train_and_evaluate(config, tmp_path / "run")

    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["selection"] == results["selection"] == "released_weights"
    assert saved["released_weights"]["files"] == {s: str(weights / n) for s, n in names.items()}
    assert "released weights" in (tmp_path / "run" / "results.md").read_text()
    assert (tmp_path / "run" / "confusion_matrix.png").stat().st_size > 5000
    assert not (tmp_path / "run" / "checkpoints").exists()

    # Every held-out sample is predicted by its own fold's file, exactly as a direct forward pass.
    corpus = load_corpus("precomputed_flow", data_dir=str(tmp_path / "tfds"))
    flow = load_precomputed_flow(corpus, PrecomputedFlowConfig(size=28, value_scale=1.0))["flow"]
    table = pd.read_csv(tmp_path / "run" / "predictions.csv").set_index("clip").loc[corpus.clip]
    probs = table[["prob_negative", "prob_positive", "prob_surprise"]].to_numpy()

    def forward(name, rows):
        model = STSTNet(3, rngs=nnx.Rngs(0))
        import_state_dict("ststnet", model, load_state_dict(weights / name))
        return np.asarray(jax.nn.softmax(model({"flow": flow[rows]}, train=False)))

    for subject, name in names.items():
        rows = np.flatnonzero(corpus.subject == subject)
        assert (table["fold"].to_numpy()[rows] == subject).all()
        np.testing.assert_allclose(probs[rows], forward(name, rows), atol=1e-5)
        other = names["smic/s02" if subject != "smic/s02" else "smic/s01"]
        assert np.abs(probs[rows] - forward(other, rows)).max() > 1e-3   # another fold's file differs

    (weights / "s02.pth").unlink()
    with pytest.raises(ValueError, match=r"smic/s02: expected .*s02\.pth.* holds 5 file\(s\): .*'sub01.pth'"):
        experiment.train_and_evaluate(config, tmp_path / "run2")
