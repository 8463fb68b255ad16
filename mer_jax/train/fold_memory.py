"""`train.fold_chunk = 'auto'`: as many folds per chunk as the devices' memory holds.

The estimate compiles the train step and the prediction step for one fold per fold device (from
abstract shapes: nothing is allocated) and reads XLA's buffer assignment:
  per fold   its train state (params, BatchNorm statistics, optimizer state; plus the selected model
             under the val / test_selected rules) and the larger of the two steps' temporaries
             (activations, gradients);
  fixed      the arguments every fold shares (the corpus features, replicated on every device).
Folds per device = (free memory x `train.memory_fraction` - fixed) // per fold, so temporaries are
assumed to grow linearly with the folds of a chunk, as vmap makes them. Free memory is the device's
`bytes_limit - bytes_in_use` where the runtime reports it (GPU, TPU), else the host's available memory
shared by its CPU devices. Every process takes the smallest answer of all processes, so the chunks
agree across hosts.
"""
from __future__ import annotations

import dataclasses
import logging

import jax
import numpy as np

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FoldMemory:
    """Bytes per device."""
    free: int            # memory the run may use before the fraction is applied
    fixed: int           # shared by every fold on the device
    state: int           # one fold's state kept between steps
    train_temp: int      # one fold's temporaries in the train step
    predict_temp: int    # ... and in the prediction step

    @property
    def per_fold(self) -> int:
        """One more fold on the device."""
        return self.state + max(self.train_temp, self.predict_temp)

    def folds_per_device(self, fraction: float) -> int:
        return int((self.free * fraction - self.fixed) // max(self.per_fold, 1))


def tree_bytes(tree) -> int:
    """Bytes of every array (or ShapeDtypeStruct) leaf of `tree`."""
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _host_available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("train.fold_chunk='auto': /proc/meminfo has no MemAvailable line; set train.fold_chunk")


def free_device_bytes(devices) -> int:
    """The smallest free memory of `devices` (this process's devices of the mesh)."""
    free = []
    for device in devices:
        stats = device.memory_stats()
        if stats and "bytes_limit" in stats:
            free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    if free:
        return min(free)
    return _host_available_bytes() // max(len(devices), 1)   # CPU devices share the host's memory


def estimate(*, train_compiled, predict_compiled, fold_state_bytes: int, shared_bytes: int,
             devices) -> FoldMemory:
    """FoldMemory from the two steps compiled for one fold per device.

    fold_state_bytes: one fold's state (all that is kept per fold between steps); shared_bytes: the
    per-device size of the arguments all folds share (the corpus features)."""
    return FoldMemory(free=free_device_bytes(devices), fixed=shared_bytes, state=fold_state_bytes,
                      train_temp=train_compiled.memory_analysis().temp_size_in_bytes,
                      predict_temp=predict_compiled.memory_analysis().temp_size_in_bytes)


def agreed_folds_per_device(memory: FoldMemory, fraction: float) -> int:
    """Folds per device every process can hold (the minimum over processes)."""
    folds = memory.folds_per_device(fraction)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        folds = int(np.min(multihost_utils.process_allgather(np.int64(folds))))
    log.info("fold_chunk=auto: %.2f GiB free per device x %.2f, %.3f GiB shared, %.3f GiB per fold -> %d "
             "fold(s) per device", memory.free / 2**30, fraction, memory.fixed / 2**30, memory.per_fold / 2**30,
             folds)
    return folds
