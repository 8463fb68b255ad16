"""MADV-Net end to end (configs/madvnet.py): the synthetic corpus's texture clips, rendered depth and AU codings
through the smoke-size network under LOSO, with the focal loss and the model's L_freq and L_AU terms."""
import json

import pandas as pd
import pytest

from configs import madvnet as madvnet_config
from mer_jax import experiment


def test_smoke_loso_end_to_end(data_dir, tmp_path):
    config = madvnet_config.get_config("smoke")
    config.dataset.data_dir = data_dir
    config.train.progress = False
    results = experiment.train_and_evaluate(config, tmp_path)
    assert results["protocol"]["num_folds"] == 6 and results["config"]["model"]["name"] == "madvnet"
    assert 0.0 <= results["uf1"] <= 1.0
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == sum(f["n"] for f in results["per_fold"]["folds"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["features"]["depth"] == "stored" and saved["inputs"] == ["texture", "depth", "au"]
    assert "- **inputs**: texture, depth, au" in (tmp_path / "results.md").read_text()


def test_config_holds_the_papers_training_and_shares_sizes():
    config = madvnet_config.get_config()
    t = config.train
    assert (t.num_epochs, t.batch_size, t.learning_rate, t.weight_decay, t.schedule, t.loss) == \
        (300, 64, 5e-5, 0.05, "cosine", "focal")
    assert t.compute_dtype == "bfloat16" and config.features.kind == "madvnet_inputs"
    config.model.num_frames = 8
    config.features.size = 96
    assert config.features.num_frames == 8 and config.model.input_size == 96   # one shared value each
    with pytest.raises(ValueError, match="variant"):
        madvnet_config.get_config("fast")


def test_depth_off_needs_the_depth_path_off(data_dir, tmp_path):
    config = madvnet_config.get_config("smoke")
    config.dataset.data_dir = data_dir
    config.features.depth = "none"
    with pytest.raises(ValueError, match="reads inputs.*depth"):
        experiment.train_and_evaluate(config, tmp_path)
