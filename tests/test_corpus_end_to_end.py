"""End to end from a licensed-corpus layout: the CLI builds CASME II from a fixture archive, trains, reports."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from mer_jax.data.corpus import load_corpus
from mer_jax.data.synthetic.archives.casme2 import write_casme2


def test_cli_trains_on_a_casme2_archive(tmp_path):
    info = write_casme2(tmp_path / "manual")
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "mer_jax.main", "--config", "configs/m3enet.py:smoke",
               "--config.dataset.name=casme2", f"--config.dataset.manual_dir={tmp_path / 'manual'}",
               f"--config.dataset.data_dir={tmp_path / 'tfds'}", "--config.train.num_epochs=1",
               "--config.train.fold_chunk=1", "--config.train.progress=False", f"--workdir={workdir}"]
    env = {**os.environ, "MER_JAX_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    # megc3 keeps CASME II's disgust + repression / happiness / surprise; others, fear, sadness are excluded.
    counts = info["emotion_counts"]
    kept = counts["disgust"] + counts["repression"] + counts["happiness"] + counts["surprise"]
    assert results["corpus"] == "casme2/cropped"
    assert results["protocol"]["excluded_by_label_scheme"] == {
        e: counts[e] for e in ("others", "fear", "sadness") if counts.get(e)}
    predictions = pd.read_csv(workdir / "predictions.csv")
    assert len(predictions) == kept
    assert set(predictions["subject"]) == {f"casme2/{s}" for s in predictions["subject"].str.split("/").str[1]}
    assert results["protocol"]["num_folds"] == predictions["subject"].nunique()
    assert (workdir / "confusion_matrix.png").exists() and (workdir / "results.md").exists()


def test_builder_options_build_their_own_config(tmp_path):
    write_casme2(tmp_path / "manual")
    corpus = load_corpus("casme2", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"),
                         builder_options={"image_size": 24})
    assert corpus.name == "casme2/cropped-image_size_24"
    assert corpus.frames(0, [0]).shape == (1, 24, 24, 3)
    with pytest.raises(ValueError, match="not fields of its config"):
        load_corpus("casme2", data_dir=str(tmp_path / "tfds"), builder_options={"size": 3})
