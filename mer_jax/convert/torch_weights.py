"""Fill our NNX models in place from PyTorch state_dicts (as `torch_checkpoint.load_state_dict` gives).

Layout changes, PyTorch -> ours:
- Conv2d weight (out, in, kh, kw) -> kernel (kh, kw, in, out); bias unchanged.
- Linear weight (out, in) -> kernel (in, out). A Linear that reads a flattened feature map gets its
  input rows permuted as well: PyTorch flattens NCHW maps in (C, H, W) order, we flatten NHWC maps in
  (H, W, C) order, so row c*H*W + h*W + w of the PyTorch kernel becomes our row (h*W + w)*C + c.
- BatchNorm2d weight / bias / running_mean / running_var -> scale / bias / mean / var;
  `num_batches_tracked` is accepted and ignored (it only matters for momentum=None, which these
  networks do not use), and may be absent (state_dicts from torch < 0.4.1 lack it).

Every key and shape is checked before anything is written: missing or unexpected keys and shape
mismatches are all reported in one error that names each key with the expected and found shapes, and
a classifier of another size is reported as a num_classes mismatch.

Supported models (`model_name` as in `mer_jax.models.registry`):
- "ststnet": christy1206/STSTNet `main.py` keys conv1..3, bn1..3, fc (the released
  `STSTNet_Weights/<subject>.pth`, one LOSO fold each, K = 3).
- "offapexnet": meb `OffApexNet` keys conv1, conv2, fc1, fc.
"""
from __future__ import annotations

from typing import Callable, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from mer_jax.models.offapexnet import OffApexNet
from mer_jax.models.ststnet import BRANCH_WIDTHS, STSTNet

# (PyTorch key, our variable, the PyTorch shape it must have, PyTorch array -> our array)
_Entry = tuple[str, nnx.Variable, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]


SHOWN = 20   # keys listed per kind of problem in an error


def _listed(keys: list[str]) -> str:
    return str(keys) if len(keys) <= SHOWN else f"{keys[:SHOWN]} and {len(keys) - SHOWN} more"


def state_dict_problems(state_dict: Mapping[str, np.ndarray], entries: list[_Entry],
                        ignored: Mapping[str, tuple[int, ...]] = {}) -> list[str]:
    """What keeps `state_dict` from filling `entries`: unexpected and missing keys, and entries of another
    shape or of non-float values. `ignored` keys (e.g. BatchNorm's num_batches_tracked, shape ()) may be
    present, with the shape given, and are not read."""
    expected = {key for key, *_ in entries}
    problems = []
    unexpected = sorted(set(state_dict) - expected - set(ignored))
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    missing = [key for key, *_ in entries if key not in state_dict]
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    mismatches = []
    for key, shape, read in [(key, shape, True) for key, _, shape, _ in entries] + \
            [(key, shape, False) for key, shape in ignored.items()]:
        if key not in state_dict:
            continue
        value = np.asarray(state_dict[key])
        if value.shape != tuple(shape):
            mismatches.append(f"{key}: expected shape {tuple(shape)}, found {value.shape}")
        elif read and not (np.issubdtype(value.dtype, np.floating) or value.dtype.name == "bfloat16"):
            mismatches.append(f"{key}: expected floating-point values, found dtype {value.dtype}")
    return problems + mismatches[:SHOWN] + ([f"and {len(mismatches) - SHOWN} more mismatches"]
                                            if len(mismatches) > SHOWN else [])


def write_entries(state_dict: Mapping[str, np.ndarray], entries: list[_Entry]) -> None:
    """Fill every entry's variable with its converted state_dict value (all converted before any is written)."""
    converted = [(var, convert(np.asarray(state_dict[key]).astype(np.float32))) for key, var, _, convert in entries]
    for var, value in converted:
        var.set_value(jnp.asarray(value, dtype=var.dtype))


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _conv(name: str, layer: nnx.Conv, *, reverse_input_channels: bool = False) -> list[_Entry]:
    kh, kw, cin, cout = layer.kernel.shape

    def kernel(w):
        w = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        return w[:, :, ::-1, :] if reverse_input_channels else w

    return [(f"{name}.weight", layer.kernel, (cout, cin, kh, kw), kernel),
            (f"{name}.bias", layer.bias, (cout,), _same)]


def _linear(name: str, layer: nnx.Linear, *, chw: tuple[int, int, int] | None = None) -> list[_Entry]:
    """Linear; `chw` = (C, H, W) of the feature map it reads flattened, if it reads one."""
    n_in, n_out = layer.kernel.shape
    if chw is None:
        kernel = lambda w: w.T
    else:
        c, h, w_ = chw
        assert c * h * w_ == n_in, (chw, n_in)
        kernel = lambda w: w.reshape(n_out, c, h, w_).transpose(2, 3, 1, 0).reshape(n_in, n_out)
    return [(f"{name}.weight", layer.kernel, (n_out, n_in), kernel),
            (f"{name}.bias", layer.bias, (n_out,), _same)]


def _batch_norm(name: str, layer: nnx.BatchNorm) -> list[_Entry]:
    n = layer.scale.shape[0]
    return [(f"{name}.{key}", var, (n,), _same) for key, var in
            (("weight", layer.scale), ("bias", layer.bias), ("running_mean", layer.mean), ("running_var", layer.var))]


def _ststnet(model: STSTNet, reverse_input_channels: bool) -> tuple[list[_Entry], set[str]]:
    entries = []
    for i in (1, 2, 3):
        entries += _conv(f"conv{i}", getattr(model, f"conv{i}"), reverse_input_channels=reverse_input_channels)
        entries += _batch_norm(f"bn{i}", getattr(model, f"bn{i}"))
    side = model.pooled_size
    entries += _linear("fc", model.fc, chw=(sum(BRANCH_WIDTHS), side, side))
    return entries, {f"bn{i}.num_batches_tracked" for i in (1, 2, 3)}


def _offapexnet(model: OffApexNet, reverse_input_channels: bool) -> tuple[list[_Entry], set[str]]:
    side = model.pooled_size
    entries = (_conv("conv1", model.conv1, reverse_input_channels=reverse_input_channels)
               + _conv("conv2", model.conv2)
               + _linear("fc1", model.fc1, chw=(model.conv2.kernel.shape[-1], side, side))
               + _linear("fc", model.fc))
    return entries, set()


# model name -> (model class, entries builder, classifier layer key)
_MODELS = {"ststnet": (STSTNet, _ststnet, "fc"), "offapexnet": (OffApexNet, _offapexnet, "fc")}


def import_state_dict(model_name: str, model: nnx.Module, state_dict: Mapping[str, np.ndarray], *,
                      reverse_input_channels: bool = False) -> None:
    """Copy the PyTorch `state_dict` of network `model_name` into `model` (in place).

    `reverse_input_channels=True` reverses the input-channel axis of the first convolutions, for
    weights trained on channel-reversed inputs: STSTNet's main.py reads its (u, v, strain) PNGs with
    cv2.imread, which returns them as (strain, v, u) if they were stored in that RGB order
    (docs/deviations.md, "STSTNet"). Nothing is written unless every key and shape matches.
    """
    if model_name not in _MODELS:
        raise ValueError(f"no PyTorch weight import for model {model_name!r}; supported: {', '.join(sorted(_MODELS))}")
    cls, build, classifier = _MODELS[model_name]
    if not isinstance(model, cls):
        raise TypeError(f"import_state_dict({model_name!r}) needs a {cls.__name__}, got {type(model).__name__}")
    entries, optional = build(model, reverse_input_channels)

    problems = state_dict_problems(state_dict, entries, {key: () for key in optional})
    model_classes = next(shape[0] for key, _, shape, _ in entries if key == f"{classifier}.weight")
    found = np.shape(state_dict.get(f"{classifier}.weight", ()))
    num_classes = found[0] if found else None
    if num_classes is not None and num_classes != model_classes:
        problems.insert(0, f"the checkpoint's classifier has {num_classes} classes, the model was built "
                           f"with num_classes={model_classes}")
    if problems:
        raise ValueError(f"cannot load the state_dict into {cls.__name__}: " + "; ".join(problems))

    write_entries(state_dict, entries)
