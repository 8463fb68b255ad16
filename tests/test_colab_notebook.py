"""launch/colab.ipynb run headless, as Colab's kernel runs it: every code cell but the install cell, in order, in
one namespace, on a one-epoch M3ENet smoke run in tmp_path (the session's synthetic corpus and feature cache):
training, loading the run, plots, predictions on clips, Grad-CAM, the comparison with the papers.

The notebook is read with json (nbformat is not a dependency). IPython's `display` is a builtin of the notebook
kernel; here it collects what the cells show. The notebook never uses pyplot (the plots draw on the Agg canvas),
so there is no `plt.show` to replace.
"""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "launch" / "colab.ipynb"
# The cheapest smoke run: one epoch of configs/m3enet.py:smoke (it evaluates and checkpoints after the last epoch).
OVERRIDES = {"train.num_epochs": 1}


def _cells():
    return json.loads(NOTEBOOK.read_text())["cells"]


def _tags(cell) -> list:
    return cell["metadata"].get("tags", [])


def test_notebook_is_nbformat_4_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] == 5
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids)
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert {cell["cell_type"] for cell in notebook["cells"]} == {"code", "markdown"}
    assert all(isinstance(cell["source"], list) and all(isinstance(s, str) for s in cell["source"])
               for cell in notebook["cells"])
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    # The install cell comes first and the parameters cell (what the test overrides) right after it.
    assert [_tags(cell) for cell in code[:2]] == [["install"], ["parameters"]]
    assert not any(_tags(cell) for cell in code[2:])
    assert any(line.startswith("!pip install") for line in code[0]["source"])
    # Shell and magic lines only in the install cell: the others are plain Python, which this test runs.
    for cell in code[1:]:
        assert not [line for line in cell["source"] if line.lstrip().startswith(("!", "%"))], cell["id"]


def test_notebook_runs_headless(data_dir, tmp_path, capsys, monkeypatch):
    workdir = tmp_path / "run"
    parameters = {"WORKDIR": str(workdir), "DATA_DIR": data_dir, "CONFIG": f"{REPO}/configs/m3enet.py:smoke",
                  "OVERRIDES": OVERRIDES}
    shown = []
    namespace = {"__name__": "__main__", "display": shown.append}
    for cell in _cells():
        if cell["cell_type"] != "code" or "install" in _tags(cell):   # pip from the network: never run here
            continue
        exec(compile("".join(cell["source"]), f"colab.ipynb:{cell['id']}", "exec"), namespace)
        if "parameters" in _tags(cell):
            namespace.update(parameters)   # papermill's convention: values injected after the parameters cell
    printed = capsys.readouterr().out

    results = json.loads((workdir / "results.json").read_text())
    assert results["model"] == "m3enet" and list(results["epochs_trained"].values()) == [1] * 6
    assert namespace["run"].history["epoch"] == [1]
    figures = {p.name for p in (workdir / "figures").iterdir()}
    assert figures == {"confusion_matrix.png", "confusion_matrix_0.png", "per_class_recall.png",
                       "per_subject_accuracy.png", "fold_curves.png", "flow_strain.png", "grad_cam.png"}
    assert all((workdir / "figures" / name).stat().st_size > 1000 for name in figures)
    assert sum(isinstance(x, Figure) for x in shown) == len(figures)
    tables = [x for x in shown if isinstance(x, pd.DataFrame)]
    assert len(tables) == 3 and list(tables[0].index) == ["uf1", "uar", "accuracy"]

    run, rows, held_out, ensemble = (namespace[k] for k in ("run", "rows", "held_out", "ensemble"))
    stored = run.predictions[[f"prob_{c}" for c in run.class_names]].to_numpy()[rows]
    np.testing.assert_allclose(held_out, stored, atol=1e-5)   # the fold that held the clips out, as in training
    np.testing.assert_allclose(ensemble.sum(-1), 1, atol=1e-5)
    maps = namespace["maps"]   # Grad-CAM of every M3ENet stream, one map per clip at the input size
    assert sorted(maps) == ["offset", "onset", "strain", "u", "v"]
    assert all(m.shape == (len(rows), 48, 48) and 0 <= m.min() and m.max() <= 1 for m in maps.values())

    compare = (workdir / "compare.md").read_text()
    assert compare in printed and f"run: {workdir}" in compare and "m3enet" in compare

    # Where no configs/ folder is at hand (mer_jax installed with pip), CONFIG names the installed configs package.
    monkeypatch.chdir(tmp_path)
    config = namespace["load_config"]("configs/m3enet.py:smoke", OVERRIDES)
    assert config.dataset.name == "synthetic_me/smoke" and config.train.num_epochs == 1
