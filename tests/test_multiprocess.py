"""Device counts the test session cannot have (it runs with 2 CPU devices), in subprocesses of the CLI:
two local processes with two CPU devices each (jax.distributed, CPU collectives) write the same results as
one process with four devices, and eight devices (4 fold x 2 data) give the metrics of one device.
Slow (~3 min each on 2 cores): `pytest -m slow`."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SMOKE = ["--config", "configs/m3enet.py:smoke", "--config.train.num_epochs=2", "--config.train.eval_every_epochs=2",
         "--config.train.checkpoint_every_epochs=2", "--config.train.progress=false"]
# as tests/test_experiment.py: reassociated float sums, amplified by Adam over 2 epochs
MESH_TOLERANCE = 5e-3
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _command(workdir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mer_jax.main", *SMOKE, "--workdir", str(workdir), *extra]


def _env(tmp_path: Path, devices: int) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
            "MER_JAX_CACHE": str(tmp_path / "cache"), "TFDS_DATA_DIR": str(tmp_path / "tfds")}


def _results(workdir: Path) -> dict:
    results = json.loads((workdir / "results.json").read_text())
    results.pop("wall_time_s")
    return results


@pytest.mark.slow
def test_two_processes_write_the_results_of_one(tmp_path):
    single = subprocess.run(_command(tmp_path / "single", "--distributed=off", "--config.mesh.fold_devices=4"),
                            cwd=ROOT, env=_env(tmp_path, 4),
                            capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr[-3000:]
    port = _free_port()
    processes = [subprocess.Popen(_command(tmp_path / "multi", f"--coordinator_address=localhost:{port}",
                                           "--num_processes=2", f"--process_id={i}", "--config.mesh.fold_devices=4"),
                                  cwd=ROOT, env=_env(tmp_path, 2), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for i in range(2)]
    outputs = [p.communicate(timeout=900) for p in processes]
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    assert _results(tmp_path / "multi") == _results(tmp_path / "single")
    assert (tmp_path / "multi" / "predictions.csv").read_text() == (tmp_path / "single" / "predictions.csv").read_text()
    # only process 0 printed the results line
    assert sum("-> " in out and "results.md" in out for out, _ in outputs) == 1


def _probabilities(workdir: Path) -> np.ndarray:
    rows = (workdir / "predictions.csv").read_text().splitlines()
    header = rows[0].split(",")
    columns = [i for i, name in enumerate(header) if name.startswith("prob_")]
    return np.array([[float(row.split(",")[i]) for i in columns] for row in rows[1:]])


@pytest.mark.slow
def test_eight_devices_give_the_metrics_of_one(tmp_path):
    runs = {"one": ("--config.mesh.fold_devices=1", "--config.mesh.data_devices=1"),
            "eight": ("--config.mesh.fold_devices=4", "--config.mesh.data_devices=2")}
    for name, mesh in runs.items():
        done = subprocess.run(_command(tmp_path / name, "--distributed=off", *mesh), cwd=ROOT, env=_env(tmp_path, 8),
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(_probabilities(tmp_path / "eight"), _probabilities(tmp_path / "one"), atol=MESH_TOLERANCE)
    one, eight = _results(tmp_path / "one"), _results(tmp_path / "eight")
    for metric in ("uf1", "uar", "accuracy"):
        assert eight[metric] == pytest.approx(one[metric], abs=0.03), metric
