"""Fill our Depth Anything (mer_jax/features/depth.py) from a transformers `DepthAnythingForDepthEstimation`
state_dict: the model.safetensors of depth-anything/Depth-Anything-V2-Small-hf (a download the user makes):

    model = nnx.eval_shape(lambda: DepthAnything(rngs=nnx.Rngs(0)))  # no random initialisation needed
    load_transformers_depth_anything(model, read_safetensors("model.safetensors"))

(`features.depth.load_depth_anything(path)` does both.) transformers' module names, which ours mirror:
- `backbone.embeddings.{cls_token, position_embeddings, patch_embeddings.projection}`;
  `backbone.encoder.layer.{i}.{norm1, attention.attention.{query, key, value}, attention.output.dense,
  layer_scale1.lambda1, norm2, mlp.fc1, mlp.fc2, layer_scale2.lambda1}`; `backbone.layernorm`.
- `neck.reassemble_stage.layers.{i}.{projection, resize}` (no `resize` for factor 1), `neck.convs.{i}`
  (no bias), `neck.fusion_stage.layers.{i}.{projection, residual_layer1, residual_layer2}.convolution{1,2}`.
- `head.conv{1,2,3}`.
Layouts: Conv2d weight (out, in, kh, kw) -> kernel (kh, kw, in, out); ConvTranspose2d weight (in, out, kh,
kw) -> kernel (kh, kw, in, out) flipped in kh and kw (flax's ConvTranspose correlates the dilated input,
torch's scatters it); Linear weight (out, in) -> kernel (in, out); LayerNorm weight / bias -> scale / bias;
cls_token, position_embeddings and lambda1 unchanged.
Keys that are accepted and skipped, because the network never reads them (`SKIPPED`): DINOv2's
`backbone.embeddings.mask_token` (masked-image pretraining) and the first fusion block's
`residual_layer1` (transformers builds it in every block; the coarsest block has no skip input).
Every key and shape is checked before anything is written; all problems are reported in one error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from flax import nnx

from mer_jax.convert.torch_weights import _Entry, _linear, _same, state_dict_problems, write_entries
from mer_jax.features.depth import Block, DepthAnything, ResidualUnit

SKIPPED = ("backbone.embeddings.mask_token", "neck.fusion_stage.layers.0.residual_layer1.")


def _conv(name: str, layer: nnx.Conv) -> list[_Entry]:
    """Conv2d, with or without bias."""
    kh, kw, cin, cout = layer.kernel.shape
    entries = [(f"{name}.weight", layer.kernel, (cout, cin, kh, kw), lambda w: w.transpose(2, 3, 1, 0))]
    return entries + ([(f"{name}.bias", layer.bias, (cout,), _same)] if layer.bias is not None else [])


def _conv_transpose(name: str, layer: nnx.ConvTranspose) -> list[_Entry]:
    kh, kw, cin, cout = layer.kernel.shape
    return [(f"{name}.weight", layer.kernel, (cin, cout, kh, kw), lambda w: w.transpose(2, 3, 0, 1)[::-1, ::-1]),
            (f"{name}.bias", layer.bias, (cout,), _same)]


def _layer_norm(name: str, layer: nnx.LayerNorm) -> list[_Entry]:
    n = layer.scale.shape[0]
    return [(f"{name}.weight", layer.scale, (n,), _same), (f"{name}.bias", layer.bias, (n,), _same)]


def _param(name: str, param: nnx.Param) -> list[_Entry]:
    return [(name, param, tuple(param.shape), _same)]


def _block(name: str, block: Block) -> list[_Entry]:
    return (_layer_norm(f"{name}.norm1", block.norm1)
            + [entry for attr in ("query", "key", "value")
               for entry in _linear(f"{name}.attention.attention.{attr}", getattr(block, attr))]
            + _linear(f"{name}.attention.output.dense", block.attention_output)
            + _param(f"{name}.layer_scale1.lambda1", block.layer_scale1)
            + _layer_norm(f"{name}.norm2", block.norm2)
            + _linear(f"{name}.mlp.fc1", block.fc1) + _linear(f"{name}.mlp.fc2", block.fc2)
            + _param(f"{name}.layer_scale2.lambda1", block.layer_scale2))


def _residual_unit(name: str, unit: ResidualUnit) -> list[_Entry]:
    return _conv(f"{name}.convolution1", unit.convolution1) + _conv(f"{name}.convolution2", unit.convolution2)


def depth_anything_entries(model: DepthAnything) -> tuple[list[_Entry], dict[str, tuple[int, ...]]]:
    """(entries (transformers key, our variable, transformers shape, converter), skipped keys -> their shapes)."""
    embeddings = model.backbone.embeddings
    entries = (_param("backbone.embeddings.cls_token", embeddings.cls_token)
               + _param("backbone.embeddings.position_embeddings", embeddings.position_embeddings)
               + _conv("backbone.embeddings.patch_embeddings.projection", embeddings.patch_embeddings))
    for index, block in enumerate(model.backbone.layers):
        entries += _block(f"backbone.encoder.layer.{index}", block)
    entries += _layer_norm("backbone.layernorm", model.backbone.layernorm)
    neck = model.neck
    for index, (reassemble, conv) in enumerate(zip(neck.reassemble, neck.convs)):
        prefix = f"neck.reassemble_stage.layers.{index}"
        entries += _conv(f"{prefix}.projection", reassemble.projection)
        if isinstance(reassemble.resize, nnx.ConvTranspose):
            entries += _conv_transpose(f"{prefix}.resize", reassemble.resize)
        elif reassemble.resize is not None:
            entries += _conv(f"{prefix}.resize", reassemble.resize)
        entries += _conv(f"neck.convs.{index}", conv)
    for index, fusion in enumerate(neck.fusion):
        prefix = f"neck.fusion_stage.layers.{index}"
        entries += _conv(f"{prefix}.projection", fusion.projection)
        if fusion.residual_layer1 is not None:
            entries += _residual_unit(f"{prefix}.residual_layer1", fusion.residual_layer1)
        entries += _residual_unit(f"{prefix}.residual_layer2", fusion.residual_layer2)
    for name in ("conv1", "conv2", "conv3"):
        entries += _conv(f"head.{name}", getattr(model.head, name))

    dim, features = model.spec.hidden_size, model.spec.fusion_hidden_size
    skipped = {"backbone.embeddings.mask_token": (1, dim)}
    for conv in ("convolution1", "convolution2"):
        skipped[f"{SKIPPED[1]}{conv}.weight"] = (features, features, 3, 3)
        skipped[f"{SKIPPED[1]}{conv}.bias"] = (features,)
    return entries, skipped


def _size_hint(model: DepthAnything, state_dict: Mapping[str, np.ndarray]) -> list[str]:
    """A note when the state_dict is of another size (e.g. V2 Base / Large into a Small model)."""
    hints = []
    patch = state_dict.get("backbone.embeddings.patch_embeddings.projection.weight")
    if patch is not None and np.ndim(patch) == 4 and np.shape(patch)[0] != model.spec.hidden_size:
        hints.append(f"the state_dict's hidden size is {np.shape(patch)[0]}, the model's "
                     f"{model.spec.hidden_size}: build DepthAnything with a DepthAnythingSpec of its config")
    layers = {key.split(".")[3] for key in state_dict if key.startswith("backbone.encoder.layer.")}
    if layers and len(layers) != model.spec.num_layers:
        hints.append(f"the state_dict has {len(layers)} backbone layers, the model {model.spec.num_layers}")
    return hints


def load_transformers_depth_anything(model: DepthAnything, state_dict: Mapping[str, np.ndarray]) -> None:
    """Copy a transformers DepthAnythingForDepthEstimation `state_dict` (name -> array) into `model` (in
    place; nothing is written unless every key and shape matches). `model` may be abstract,
    `nnx.eval_shape(lambda: DepthAnything(spec, rngs=nnx.Rngs(0)))`; it is concrete afterwards."""
    if not isinstance(model, DepthAnything):
        raise TypeError(f"load_transformers_depth_anything needs a DepthAnything, got {type(model).__name__}")
    entries, skipped = depth_anything_entries(model)
    problems = _size_hint(model, state_dict)
    problems += state_dict_problems(state_dict, entries, skipped)
    if problems:
        raise ValueError("cannot load the state_dict into DepthAnything: " + "; ".join(problems))

    write_entries(state_dict, entries)


def read_safetensors(path) -> dict[str, np.ndarray]:
    """Every tensor of the safetensors file `path` as NumPy arrays (needs the `safetensors` package)."""
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError as error:
        raise ImportError("reading Depth Anything weights (.safetensors) needs the safetensors package: "
                          "pip install safetensors") from error
    try:
        return load_file(str(Path(path)))
    except (SafetensorError, OSError, ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a readable safetensors file ({error})") from error
