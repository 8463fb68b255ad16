"""Checkpoint folders of the feature networks (the motion magnifier, RAFT): the constructor fields as JSON
next to an orbax StandardCheckpointer save of the module's state, restored without a random initialisation.

  <path>/<fields_file>  the constructor fields, JSON
  <path>/params/        orbax save of nnx.state(module) (parameters and any BatchNorm statistics)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import orbax.checkpoint as ocp
from flax import nnx


def save_network(path, module: nnx.Module, fields: dict, fields_file: str) -> None:
    """Write `module`, built from constructor `fields`, as the checkpoint folder `path`."""
    path = Path(path).absolute()
    path.mkdir(parents=True, exist_ok=True)
    (path / fields_file).write_text(json.dumps(fields, indent=1))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path / "params", nnx.state(module), force=True)
    checkpointer.wait_until_finished()


def load_network(path, fields_file: str, build: Callable[..., nnx.Module], missing: str) -> nnx.Module:
    """The module `build(**fields)` of the checkpoint folder `path`, its state restored into an abstract
    (nnx.eval_shape) build; `missing` ends the error raised when `path` is not such a folder."""
    path = Path(path).absolute()
    if not (path / fields_file).exists() or not (path / "params").exists():
        raise FileNotFoundError(f"{path} is not a {missing}: expected {fields_file} and params/ in it")
    fields = json.loads((path / fields_file).read_text())
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: build(**fields)))
    return nnx.merge(graphdef, ocp.StandardCheckpointer().restore(path / "params", abstract))
