#!/usr/bin/env bash
# Train on all GPUs of one machine: one process sees every GPU, no jax.distributed needed. The mesh
# ('fold', 'data') spreads the folds over the GPUs (config.mesh.fold_devices=-1 takes all of them);
# give some GPUs to the batch axis with --config.mesh.data_devices=N.
#
# Edit / export: GPUS (comma-separated ids, default all), WORKDIR, CONFIG, ARGS (--config.x=... overrides).
# Needs `pip install -e .` then `pip install "jax[cuda12]==<that jax version>"` in the active environment.
# Usage, from the repository root: ./launch/single_machine_multi_gpu.sh
set -euo pipefail

WORKDIR="${WORKDIR:-runs/m3enet}"
CONFIG="${CONFIG:-configs/m3enet.py}"
ARGS="${ARGS:-}"
if [ -n "${GPUS:-}" ]; then export CUDA_VISIBLE_DEVICES="$GPUS"; fi

python -c "import jax; print('devices:', jax.devices())"
# shellcheck disable=SC2086
python -m mer_jax.main --distributed=off --config "$CONFIG" --workdir "$WORKDIR" $ARGS
