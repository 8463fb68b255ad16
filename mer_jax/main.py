"""Command line entry: `python -m mer_jax.main --config configs/m3enet.py --workdir DIR`.

`config.job` picks what runs: `train_and_evaluate` (the default: mer_jax.experiment), `magnifier`
(pre-training of the motion magnifier: mer_jax.train.magnifier_training, configs/magnifier.py) or `raft`
(RAFT trained on synthetic flow pairs: mer_jax.train.raft_training, configs/raft.py).

`--config.train.num_epochs=10` and similar flags override any config field. Under SLURM (`srun`, more
than one task), on a multi-host Cloud TPU slice (`--distributed=on`) or with explicit
`--coordinator_address --num_processes --process_id`, every process runs this same command and
jax.distributed joins them (mer_jax.train.distributed); see launch/.
"""
from __future__ import annotations

import logging as std_logging
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, optionally `path.py:variant`.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the report.")
_DISTRIBUTED = flags.DEFINE_enum("distributed", "auto", ["auto", "on", "off"],
                                 "Start jax.distributed: auto = when SLURM, Cloud TPU worker or Open MPI "
                                 "variables show several processes; on = always (Cloud TPU VM slices); off = never.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (explicit multi-process job).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job (explicit multi-process job).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process, 0 .. num_processes-1 (explicit job).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import jax

    from mer_jax.train import distributed

    distributed.initialize(_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if not jax.config.jax_compilation_cache_dir:
        # Later runs of the same model and shapes skip XLA compilation.
        jax.config.update("jax_compilation_cache_dir", str(Path.home() / ".cache" / "mer_jax" / "jit"))
    from mer_jax import experiment

    if not flags.FLAGS["verbosity"].present:
        # Our own progress at INFO; dependencies (orbax, TensorFlow) only from WARNING up.
        logging.set_verbosity(logging.WARNING)
        std_logging.getLogger("mer_jax").setLevel(std_logging.INFO)
    job = _CONFIG.value.get("job", "train_and_evaluate")
    if job == "magnifier":
        from mer_jax.train import magnifier_training

        summary = magnifier_training.pretrain(_CONFIG.value, _WORKDIR.value)
        held_out = summary["held_out"]
        print(f"magnifier: final loss {summary['final_loss']:.4f}, held-out PSNR {held_out['psnr_db']:.2f} dB, "
              f"magnification error max {100 * held_out['relative_error_max']:.1f}% -> {summary['checkpoint']}")
        return
    if job == "raft":
        from mer_jax.train import raft_training

        raft_training.pretrain(_CONFIG.value, _WORKDIR.value)   # prints its EPE next to TV-L1's
        return
    if job != "train_and_evaluate":
        raise app.UsageError(f"config.job {job!r} is not a job; expected 'train_and_evaluate', 'magnifier' "
                             "or 'raft'")
    results = experiment.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    if results is not None and distributed.is_main_process():
        print(f"{results['model']} on {results['corpus']} ({results['protocol']['name']}, "
              f"{results['protocol']['num_folds']} folds, selection={results['selection']}): "
              f"UF1 {results['uf1']:.4f}  UAR {results['uar']:.4f}  accuracy {results['accuracy']:.4f}  "
              f"-> {_WORKDIR.value}/results.md")


if __name__ == "__main__":
    app.run(main)
