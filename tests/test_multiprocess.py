"""Two local processes with two CPU devices each (jax.distributed, CPU collectives) run the smoke LOSO and
write the same results as one process with four devices. Slow (~3 min on 2 cores): `pytest -m slow`."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SMOKE = ["--config", "configs/m3enet.py:smoke", "--config.train.num_epochs=2", "--config.train.eval_every_epochs=2",
         "--config.train.checkpoint_every_epochs=2", "--config.train.progress=false", "--config.mesh.fold_devices=4"]
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
    single = subprocess.run(_command(tmp_path / "single", "--distributed=off"), cwd=ROOT, env=_env(tmp_path, 4),
                            capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr[-3000:]
    port = _free_port()
    processes = [subprocess.Popen(_command(tmp_path / "multi", f"--coordinator_address=localhost:{port}",
                                           "--num_processes=2", f"--process_id={i}"),
                                  cwd=ROOT, env=_env(tmp_path, 2), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for i in range(2)]
    outputs = [p.communicate(timeout=900) for p in processes]
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    assert _results(tmp_path / "multi") == _results(tmp_path / "single")
    assert (tmp_path / "multi" / "predictions.csv").read_text() == (tmp_path / "single" / "predictions.csv").read_text()
    # only process 0 printed the results line
    assert sum("-> " in out and "results.md" in out for out, _ in outputs) == 1
