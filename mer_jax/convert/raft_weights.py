"""Fill our RAFT (mer_jax/features/raft.py) from a torchvision `raft_large` / `raft_small` state_dict.

The state_dict is name -> NumPy array, as `torch_checkpoint.load_state_dict` reads torchvision's released
files (e.g. raft_large_C_T_SKHT_V2-ff5fadd5.pth, raft_small_C_T_V2-01064c6d.pth; downloads the user makes):

    from mer_jax.convert.torch_checkpoint import load_state_dict
    model = nnx.eval_shape(lambda: RAFT("large", rngs=nnx.Rngs(0)))  # no random initialisation needed
    load_torchvision_raft(model, load_state_dict("raft_large_C_T_SKHT_V2-ff5fadd5.pth"))

torchvision's module names, which ours mirror (torchvision.models.optical_flow.raft):
- `{feature,context}_encoder.convnormrelu`, `.layer{1,2,3}.{0,1}.convnormrelu{1,2[,3]}`,
  `.layer{2,3}.0.downsample` are Conv2dNormActivation sequences: the convolution is `.0`, the norm `.1`
  (BatchNorm2d only: InstanceNorm2d has no parameters, and the small context encoder has no norm);
  `{feature,context}_encoder.conv` is a plain Conv2d.
- `update_block.motion_encoder.conv{corr1,corr2,flow1,flow2,}.0` (conv + ReLU sequences; small: no convcorr2),
  `update_block.recurrent_block.convgru{1,2}.conv{z,r,q}` (small: convgru1 only),
  `update_block.flow_head.conv{1,2}`, and for large `mask_predictor.convrelu.0` and `mask_predictor.conv`.
Layouts: Conv2d weight (out, in, kh, kw) -> kernel (kh, kw, in, out); BatchNorm2d weight / bias /
running_mean / running_var -> scale / bias / mean / var; `num_batches_tracked` is accepted and ignored.
Every key and shape is checked before anything is written; all problems are reported in one error.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from mer_jax.convert.torch_weights import _batch_norm, _conv, _Entry, state_dict_problems, write_entries
from mer_jax.features.raft import RAFT, VARIANTS, ConvNormAct, FeatureEncoder


def _unit(name: str, unit: ConvNormAct) -> tuple[list[_Entry], set[str]]:
    """A Conv2dNormActivation: conv at `.0`, BatchNorm at `.1`."""
    entries = _conv(f"{name}.0", unit.conv)
    if unit.bn is None:
        return entries, set()
    return entries + _batch_norm(f"{name}.1", unit.bn), {f"{name}.1.num_batches_tracked"}


def _encoder(name: str, encoder: FeatureEncoder) -> tuple[list[_Entry], set[str]]:
    units = [(f"{name}.convnormrelu", encoder.convnormrelu)]
    for stage_index, stage in enumerate((encoder.layer1, encoder.layer2, encoder.layer3), start=1):
        for block_index, block in enumerate(stage):
            prefix = f"{name}.layer{stage_index}.{block_index}"
            units += [(f"{prefix}.{attr}", getattr(block, attr)) for attr in
                      ("convnormrelu1", "convnormrelu2", "convnormrelu3", "downsample")
                      if getattr(block, attr, None) is not None]
    entries, optional = [], set()
    for unit_name, unit in units:
        unit_entries, unit_optional = _unit(unit_name, unit)
        entries += unit_entries
        optional |= unit_optional
    return entries + _conv(f"{name}.conv", encoder.conv), optional


def raft_entries(model: RAFT) -> tuple[list[_Entry], set[str]]:
    """(entries (torchvision key, our variable, torchvision shape, converter), optional keys) of `model`."""
    entries, optional = [], set()
    for name in ("feature_encoder", "context_encoder"):
        encoder_entries, encoder_optional = _encoder(name, getattr(model, name))
        entries += encoder_entries
        optional |= encoder_optional
    motion = model.update_block.motion_encoder
    for attr in ("convcorr1", "convcorr2", "convflow1", "convflow2", "conv"):
        if getattr(motion, attr) is not None:
            entries += _unit(f"update_block.motion_encoder.{attr}", getattr(motion, attr))[0]
    for index, gru in enumerate(model.update_block.recurrent_block, start=1):
        for attr in ("convz", "convr", "convq"):
            entries += _conv(f"update_block.recurrent_block.convgru{index}.{attr}", getattr(gru, attr))
    entries += _conv("update_block.flow_head.conv1", model.update_block.flow_head.conv1)
    entries += _conv("update_block.flow_head.conv2", model.update_block.flow_head.conv2)
    if model.mask_predictor is not None:
        entries += _unit("mask_predictor.convrelu", model.mask_predictor.convrelu)[0]
        entries += _conv("mask_predictor.conv", model.mask_predictor.conv)
    return entries, optional


def _variant_of(state_dict: Mapping[str, np.ndarray]) -> str | None:
    """The torchvision variant whose stem width the state_dict has, if it has a stem."""
    stem = state_dict.get("feature_encoder.convnormrelu.0.weight")
    widths = {spec.feature_layers[0]: name for name, spec in VARIANTS.items()}
    return widths.get(np.shape(stem)[0]) if stem is not None and np.ndim(stem) == 4 else None


def load_torchvision_raft(model: RAFT, state_dict: Mapping[str, np.ndarray]) -> None:
    """Copy a torchvision raft_large / raft_small `state_dict` into `model` (in place; nothing is written
    unless every key and shape matches). `model` may be abstract, `nnx.eval_shape(lambda: RAFT(variant,
    rngs=nnx.Rngs(0)))`, which skips the random initialisation; it is concrete afterwards."""
    if not isinstance(model, RAFT):
        raise TypeError(f"load_torchvision_raft needs a RAFT, got {type(model).__name__}")
    entries, optional = raft_entries(model)
    problems = []
    found_variant = _variant_of(state_dict)
    if found_variant is not None and found_variant != model.variant:
        problems.append(f"the state_dict is a torchvision raft_{found_variant} one, the model was built as "
                        f"RAFT({model.variant!r}): build RAFT({found_variant!r})")
    problems += state_dict_problems(state_dict, entries, {key: () for key in optional})
    if problems:
        raise ValueError(f"cannot load the state_dict into RAFT({model.variant!r}): " + "; ".join(problems))

    write_entries(state_dict, entries)
