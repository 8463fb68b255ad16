#!/usr/bin/env bash
# Train on a Cloud TPU VM slice (one or several worker hosts): create the TPU VM, install mer_jax from
# the repository on every worker, run the same command on all workers at once.
#
# Edit / export before running:
#   REPO_URL      git URL of this repository (required), REPO_REF the branch or commit (default: main)
#   TPU_NAME, ZONE, ACCELERATOR (e.g. v4-32 = 4 hosts), RUNTIME (TPU VM software version), PROJECT
#   WORKDIR       a directory every worker sees, for the orbax checkpoints and the report; on a
#                 multi-host slice mount a bucket first (e.g. gcsfuse) or use a Filestore share
#   CONFIG, ARGS  the config file and any --config.x=... overrides
# Steps: ./launch/tpu_vm.sh create | install | run | delete   (no argument: create, install, run).
#
# `--distributed=on` makes every worker call jax.distributed.initialize(), which finds the other workers
# through the TPU metadata server (mer_jax/train/distributed.py); only worker 0 writes the report.
set -euo pipefail

: "${REPO_URL:?export REPO_URL=<git URL of mer_jax>}"
REPO_REF="${REPO_REF:-main}"
TPU_NAME="${TPU_NAME:-mer-jax}"
ZONE="${ZONE:-us-central2-b}"
ACCELERATOR="${ACCELERATOR:-v4-8}"
RUNTIME="${RUNTIME:-tpu-ubuntu2204-base}"
PROJECT="${PROJECT:-$(gcloud config get-value project)}"
WORKDIR="${WORKDIR:-\$HOME/runs/m3enet}"
CONFIG="${CONFIG:-configs/m3enet.py}"
ARGS="${ARGS:-}"

tpu() { gcloud compute tpus tpu-vm "$@" --zone="$ZONE" --project="$PROJECT"; }
on_all_workers() { tpu ssh "$TPU_NAME" --worker=all --command="$1"; }

create() {
  tpu create "$TPU_NAME" --accelerator-type="$ACCELERATOR" --version="$RUNTIME"
}

install() {
  on_all_workers "set -e
    [ -d mer_jax ] || git clone -q '$REPO_URL' mer_jax
    cd mer_jax && git fetch -q origin '$REPO_REF' && git checkout -q FETCH_HEAD
    python3 -m pip install -q -U pip
    python3 -m pip install -q -e .
    python3 -m pip install -q \"jax[tpu]==\$(python3 -c 'import jax; print(jax.__version__)')\""
}

run() {
  on_all_workers "cd mer_jax && python3 -m mer_jax.main --distributed=on --config '$CONFIG' \
    --workdir $WORKDIR $ARGS"
}

delete() {
  tpu delete "$TPU_NAME" --quiet
}

if [ $# -eq 0 ]; then create; install; run; else "$@"; fi
