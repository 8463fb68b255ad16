"""Multi-process start-up: when jax.distributed is started and with what, and that only process 0 writes."""
import jax
import numpy as np
import pytest

from mer_jax import experiment
from mer_jax.data import folds
from mer_jax.evaluate import report
from mer_jax.train import distributed, writers
from tests.test_report import HISTORY, make_results

SLURM_TWO_TASKS = {"SLURM_JOB_ID": "42", "SLURM_STEP_NODELIST": "gpu[01-02]", "SLURM_NTASKS": "2",
                   "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}


@pytest.mark.parametrize("environ, cluster", [
    ({}, None),
    ({"HOME": "/root", "PATH": "/usr/bin"}, None),
    (SLURM_TWO_TASKS, "slurm"),
    ({**SLURM_TWO_TASKS, "SLURM_NTASKS": "1"}, None),                        # one-task job
    ({k: v for k, v in SLURM_TWO_TASKS.items() if k != "SLURM_STEP_NODELIST"}, None),  # sbatch, outside srun
    ({"TPU_WORKER_HOSTNAMES": "t1k-w-0,t1k-w-1,t1k-w-2,t1k-w-3"}, "tpu"),
    ({"TPU_WORKER_HOSTNAMES": "localhost"}, None),                           # single-host TPU VM
    ({"MEGASCALE_NUM_SLICES": "2"}, "tpu"),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, "mpi"),
    ({"OMPI_COMM_WORLD_SIZE": "1"}, None),
])
def test_detect_cluster(environ, cluster):
    assert distributed.detect_cluster(environ) == cluster


def test_detect_cluster_names_a_bad_variable():
    with pytest.raises(ValueError, match="SLURM_NTASKS='two'"):
        distributed.detect_cluster({**SLURM_TWO_TASKS, "SLURM_NTASKS": "two"})


@pytest.mark.parametrize("mode, environ, expected", [
    ("auto", {}, None),                        # a plain shell: single process, no jax.distributed
    ("auto", SLURM_TWO_TASKS, {}),             # JAX reads coordinator, count and id from SLURM
    ("off", SLURM_TWO_TASKS, None),
    ("on", {}, {}),                            # Cloud TPU VM slice: JAX asks the TPU metadata server
])
def test_initialize_kwargs_from_mode_and_environment(mode, environ, expected):
    assert distributed.initialize_kwargs(mode, environ=environ) == expected


def test_explicit_flags_win_over_the_environment():
    kwargs = distributed.initialize_kwargs("auto", "10.0.0.1:1234", 4, 3, environ=SLURM_TWO_TASKS)
    assert kwargs == {"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 3}


@pytest.mark.parametrize("args, match", [
    (("auto", "10.0.0.1:1234", 4, None), "without --process_id"),
    (("auto", None, 2, 0), "without --coordinator_address"),
    (("auto", "10.0.0.1:1234", 2, 2), "0 <= process_id < num_processes=2"),
    (("off", "10.0.0.1:1234", 2, 0), "contradicts"),
    (("sometimes",), "expected one of"),
])
def test_inconsistent_flags_are_refused(args, match):
    with pytest.raises(ValueError, match=match):
        distributed.initialize_kwargs(*args, environ={})


def test_single_process_initialize_is_a_no_op(monkeypatch):
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: pytest.fail("must not start jax.distributed"))
    for name in ("OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES", "MEGASCALE_NUM_SLICES", *distributed.SLURM_VARS):
        monkeypatch.delenv(name, raising=False)
    assert distributed.initialize() is False
    assert distributed.is_main_process()


def test_initialize_passes_the_explicit_job_to_jax(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    assert distributed.initialize("auto", "localhost:5555", 2, 0)
    assert calls == [{"coordinator_address": "localhost:5555", "num_processes": 2, "process_id": 0}]


def _write_everything(workdir):
    """Everything a run writes outside its checkpoints: report, scalars and predictions."""
    written = report.write_report(workdir, make_results(), HISTORY)
    writer = writers.create_writer(workdir)
    writer.write_scalars(1, {"train/loss": 0.5})
    writer.flush()
    writer.close()
    n = 6
    corpus = type("Corpus", (), {"clip": np.array([f"c{i}" for i in range(n)]), "subject": np.arange(n) % 3,
                                 "dataset": np.array(["casme2"] * n)})
    plan = folds.make_plan("loso", corpus.subject, corpus.dataset)
    probs = np.full((n, 3), 1 / 3, np.float32)
    experiment._write_predictions(workdir, corpus, np.arange(n) % 3, probs, corpus.subject, plan,
                                  ["negative", "positive", "surprise"])
    return written


def test_only_process_zero_writes(monkeypatch, tmp_path):
    written = _write_everything(tmp_path / "p0")
    assert {"results.json", "results.md", "confusion_matrix.png", "curves.png"} <= set(written)
    assert (tmp_path / "p0" / "predictions.csv").exists() and len(list((tmp_path / "p0").iterdir())) > 5

    monkeypatch.setattr(jax, "process_index", lambda *a, **kw: 1)
    assert not distributed.is_main_process()
    assert _write_everything(tmp_path / "p1") == {}
    assert not (tmp_path / "p1").exists() or not any((tmp_path / "p1").rglob("*"))


def test_process_one_still_validates_the_results(monkeypatch, tmp_path):
    monkeypatch.setattr(jax, "process_index", lambda *a, **kw: 1)
    results = make_results()
    del results["uf1"]
    with pytest.raises(ValueError, match="uf1"):
        report.write_report(tmp_path, results)
