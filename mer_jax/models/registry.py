"""Model registry: names used by the configs (`config.model.name`) -> constructors and their inputs."""
from __future__ import annotations

from flax import nnx

from mer_jax.models.m3enet import M3ENet

MODELS = {"m3enet": M3ENet}


def _lookup(name: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def create_model(name: str, num_classes: int, *, rngs: nnx.Rngs, **kwargs) -> nnx.Module:
    """The model `name` for `num_classes` classes; `kwargs` are its constructor fields."""
    return _lookup(name)(num_classes, rngs=rngs, **kwargs)


def model_inputs(name: str) -> tuple[str, ...]:
    """The keys of the `inputs` dict the model `name` reads, e.g. ("flow", "frames") for m3enet."""
    return _lookup(name).INPUTS
