"""Multi-process start-up (JAX's distributed runtime) and the rule that only process 0 writes files.

One command runs unchanged on one machine, on a SLURM GPU cluster and on a Cloud TPU pod slice:
`initialize` starts `jax.distributed` when the flags or the environment say the job has several
processes, and does nothing otherwise. Every process then trains its share of the global arrays;
only process 0 writes metrics, results and plots (`is_main_process`), while orbax checkpoints are
saved collectively by all processes (mer_jax.train.checkpointing).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import jax

log = logging.getLogger(__name__)

MODES = ("auto", "on", "off")
# The variables JAX's own SLURM cluster detection reads (jax/_src/clusters/slurm_cluster.py); inside an
# `srun` step all are set, in the batch script outside `srun` the step node list is not.
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")


def _count(environ: Mapping[str, str], name: str) -> int:
    value = environ.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected an integer") from None


def detect_cluster(environ: Mapping[str, str]) -> str | None:
    """The multi-process environment the job runs in, or None when it is a single process.

    "slurm": an `srun` step with more than one task; "tpu": a Cloud TPU slice with more than one
    worker host (`TPU_WORKER_HOSTNAMES` lists several, or several slices through
    `MEGASCALE_NUM_SLICES`); "mpi": Open MPI with more than one rank. A single-host TPU VM, a
    one-task SLURM job and a plain shell are single processes.
    """
    if all(v in environ for v in SLURM_VARS) and _count(environ, "SLURM_NTASKS") > 1:
        return "slurm"
    hosts = [h for h in environ.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()]
    if len(hosts) > 1 or ("MEGASCALE_NUM_SLICES" in environ and _count(environ, "MEGASCALE_NUM_SLICES") > 1):
        return "tpu"
    if "OMPI_COMM_WORLD_SIZE" in environ and _count(environ, "OMPI_COMM_WORLD_SIZE") > 1:
        return "mpi"
    return None


def initialize_kwargs(mode: str = "auto", coordinator_address: str | None = None, num_processes: int | None = None,
                      process_id: int | None = None, environ: Mapping[str, str] | None = None) -> dict | None:
    """The keyword arguments of `jax.distributed.initialize`, or None to stay a single process.

    Explicit `coordinator_address`, `num_processes` and `process_id` (all three) win. Otherwise
    `mode="on"` (the Cloud TPU launcher, whose workers JAX finds through the TPU metadata server)
    and `mode="auto"` with a multi-process environment (`detect_cluster`) give `{}`: JAX reads the
    coordinator, process count and id from that environment. `mode="off"` and a single-process
    environment give None.
    """
    if mode not in MODES:
        raise ValueError(f"--distributed={mode!r}: expected one of {list(MODES)}")
    explicit = {"coordinator_address": coordinator_address, "num_processes": num_processes, "process_id": process_id}
    given = {k: v for k, v in explicit.items() if v is not None}
    if given:
        if len(given) < 3:
            missing = sorted(set(explicit) - set(given))
            raise ValueError(f"--{', --'.join(sorted(given))} given without --{', --'.join(missing)}: "
                             "an explicit multi-process job needs all of coordinator_address, "
                             "num_processes and process_id")
        if mode == "off":
            raise ValueError("--distributed=off contradicts the explicit --coordinator_address, "
                             "--num_processes and --process_id")
        if not 0 <= process_id < num_processes:
            raise ValueError(f"--process_id={process_id}: expected 0 <= process_id < num_processes={num_processes}")
        return given
    if mode == "on":
        return {}
    if mode == "off":
        return None
    return {} if detect_cluster(os.environ if environ is None else environ) is not None else None


def initialize(mode: str = "auto", coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
    """Start `jax.distributed` per `initialize_kwargs` (from the environment); True when it was started.

    Call before anything else touches JAX devices.
    """
    kwargs = initialize_kwargs(mode, coordinator_address, num_processes, process_id)
    if kwargs is None:
        return False
    jax.distributed.initialize(**kwargs)
    log.info("jax.distributed: process %d of %d, %d local of %d devices", jax.process_index(),
             jax.process_count(), jax.local_device_count(), jax.device_count())
    return True


def is_main_process() -> bool:
    """True on process 0, the only process that writes metrics, results.json, results.md and plots."""
    return jax.process_index() == 0


def to_host(tree):
    """Numpy copies of the (global) arrays in `tree`, on every process. With several processes each one
    holds only its own shards, so the arrays are all-gathered first."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)
