"""Model registry: names used by the configs (`config.model.name`) -> constructors and their inputs."""
from __future__ import annotations

from flax import nnx

from mer_jax.models.dfrnet import DFRNet
from mer_jax.models.dstnet import DSTNet
from mer_jax.models.edmdbn import EDMDBN
from mer_jax.models.m3enet import M3ENet
from mer_jax.models.madvnet import MADVNet
from mer_jax.models.offapexnet import OffApexNet
from mer_jax.models.ststnet import STSTNet

MODELS = {"dfrnet": DFRNet, "dstnet": DSTNet, "edmdbn": EDMDBN, "m3enet": M3ENet, "madvnet": MADVNet,
          "offapexnet": OffApexNet, "ststnet": STSTNet}


def _lookup(name: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def create_model(name: str, num_classes: int, *, rngs: nnx.Rngs, **kwargs) -> nnx.Module:
    """The model `name` for `num_classes` classes; `kwargs` are its constructor fields."""
    return _lookup(name)(num_classes, rngs=rngs, **kwargs)


def model_inputs(name: str, **model_kwargs) -> tuple[str, ...]:
    """The keys of the `inputs` dict the model `name` built with `model_kwargs` (its constructor fields)
    reads, e.g. ("flow", "frames") for m3enet and ("flow",) for m3enet with streams="flow". A model
    whose inputs depend on its fields says so with a static `inputs_for(**model_kwargs)`; otherwise
    its class attribute `INPUTS` holds them."""
    model = _lookup(name)
    inputs_for = getattr(model, "inputs_for", None)
    return tuple(inputs_for(**model_kwargs)) if inputs_for is not None else tuple(model.INPUTS)


def input_shapes(name: str, **model_kwargs) -> dict[str, tuple[int, ...]]:
    """Per-sample shape of every input the model `name` built with `model_kwargs` reads: the model's
    static `input_shapes(**model_kwargs)`, or [S, S, 3] with S = `input_size` for image models."""
    model = _lookup(name)
    shapes = getattr(model, "input_shapes", None)
    if shapes is not None:
        return shapes(**model_kwargs)
    size = model_kwargs["input_size"]
    return {key: (size, size, 3) for key in model_inputs(name, **model_kwargs)}
