"""EDMDBN (entire-detail motion dual-branch network; papers/edmdbn.txt) with accumulated-attention Swin.

    inputs["entire"] [B, S, S, 3]     apex - onset (section 3.2), S = 224 (section 4.3)
    inputs["detail"] [B, T, S, S, 3]  T = 8 consecutive differences (section 3.2)
      entire branch: 2-D Swin-T with accumulated attention (a clip of one frame, patch 1 x 4 x 4)
      detail branch: 3-D (video) Swin-T with accumulated attention, patch 8 x 4 x 4 (section 3.3)
        both: C = 128, depths [2, 2, 6], heads [4, 8, 16], window (8, 7, 7), drop path 0.2
        (public code `custom_swin`); tokens 56^2 x C -> 28^2 x 2C -> 14^2 x 4C (Fig. 2)
      each branch averaged over its time axis (section 3.4, Fig. 4) -> [B, 14, 14, 4C]
      fusion: element-wise addition (section 3.4; Table 9) or concatenation along channels
      flatten -> Linear(4C x N -> K), N = 14 x 14 tokens (section 3.5: C_in = 4C x N)

Choices where the paper is silent or differs from the public code (docs/deviations.md, "EDMDBN"):
- The entire branch embeds 1 x 4 x 4 patches of its single frame. The public code zero-pads the frame to
  8 frames and uses the detail branch's 8 x 4 x 4 patch embedding, whose other 7 slices never see data:
  43,008 more parameters per model, the same function. `entire_patch=(8, 4, 4)` rebuilds that layout.
- The head flattens in (H, W, C) order; the public code flattens (C, H, W).
- `branches` ("both" | "entire" | "detail") gives the ablations of Table 6 (one branch: no fusion).
- `remat` recomputes each Swin block's activations in the backward pass to save memory (issue 6).
Parameters: about 44.0M for K = 3 (two branches of 21.9M plus a 301k head); the paper reports 50.8M and
the public code's arithmetic about 44.1M (docs/deviations.md).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from mer_jax.models import layers
from mer_jax.models.swin import SwinTransformer

BRANCHES = ("both", "entire", "detail")
FUSIONS = ("add", "concat")


def token_grid(input_size: int, patch: int, num_stages: int) -> int:
    """Tokens per side after the patch embedding and num_stages - 1 patch mergings (each pads to even)."""
    side = math.ceil(input_size / patch)
    for _ in range(num_stages - 1):
        side = math.ceil(side / 2)
    return side


class EDMDBN(nnx.Module):
    """Entire-motion and detail-motion Swin branches, fused, then a linear classifier (module docstring)."""

    @staticmethod
    def inputs_for(branches: str = "both", **_) -> tuple[str, ...]:
        _check("branches", branches, BRANCHES)
        return {"both": ("entire", "detail"), "entire": ("entire",), "detail": ("detail",)}[branches]

    @staticmethod
    def input_shapes(branches: str = "both", input_size: int = 224, num_frames: int = 8, **_) -> dict:
        shapes = {"entire": (input_size, input_size, 3), "detail": (num_frames, input_size, input_size, 3)}
        return {key: shapes[key] for key in EDMDBN.inputs_for(branches)}

    def __init__(self, num_classes: int, *, rngs: nnx.Rngs, branches: str = "both", fusion: str = "add",
                 input_size: int = 224, num_frames: int = 8, embed_dim: int = 128, depths=(2, 2, 6),
                 num_heads=(4, 8, 16), window_size=(8, 7, 7), detail_patch=(8, 4, 4), entire_patch=(1, 4, 4),
                 drop_path_rate: float = 0.2, token_attention: bool = True, remat: bool = False):
        _check("branches", branches, BRANCHES)
        _check("fusion", fusion, FUSIONS)
        if detail_patch[1:] != entire_patch[1:]:
            raise ValueError(f"EDMDBN branches must share their spatial patch to fuse token by token, got "
                             f"detail_patch={detail_patch} and entire_patch={entire_patch}")
        self.branches, self.fusion = branches, fusion
        self.input_size, self.num_frames = input_size, num_frames
        swin = lambda patch: SwinTransformer(
            in_channels=3, patch_size=tuple(patch), embed_dim=embed_dim, depths=tuple(depths),
            num_heads=tuple(num_heads), window_size=tuple(window_size), drop_path_rate=drop_path_rate,
            token_attention=token_attention, remat=remat, rngs=rngs)
        self.entire_branch = swin(entire_patch) if branches != "detail" else None
        self.detail_branch = swin(detail_patch) if branches != "entire" else None
        features = embed_dim * 2 ** (len(depths) - 1)
        channels = 2 * features if branches == "both" and fusion == "concat" else features
        tokens = token_grid(input_size, detail_patch[1], len(depths)) ** 2
        self.head = layers.linear(channels * tokens, num_classes, rngs=rngs)

    def _input(self, inputs, key: str, shape: tuple) -> jax.Array:
        x = inputs[key]
        if tuple(x.shape[1:]) != shape:
            raise ValueError(f"EDMDBN inputs[{key!r}] must be [B, {', '.join(map(str, shape))}], got {list(x.shape)}")
        return x

    def __call__(self, inputs: dict[str, jax.Array], *, train: bool, dropout_key=None,
                 return_attention: bool = False):
        """Logits [B, K]; with return_attention also {branch: per-stage token-attention maps}."""
        s = self.input_size
        keys = jax.random.split(dropout_key) if dropout_key is not None else (None, None)
        branches = []
        if self.entire_branch is not None:   # a 2-D input is a clip of one frame
            branches.append(("entire", self.entire_branch, keys[0], self._input(inputs, "entire", (s, s, 3))[:, None]))
        if self.detail_branch is not None:
            branches.append(("detail", self.detail_branch, keys[1],
                             self._input(inputs, "detail", (self.num_frames, s, s, 3))))
        features, attention = [], {}
        for name, branch, key, x in branches:
            y, attention[name] = branch(x, train=train, dropout_key=key, return_attention=True)
            features.append(y.mean(axis=1))          # average over time (section 3.4)
        if len(features) == 1:
            fused = features[0]
        elif self.fusion == "add":
            fused = features[0] + features[1]
        else:
            fused = jnp.concatenate(features, -1)
        logits = self.head(fused.reshape(fused.shape[0], -1))
        return (logits, attention) if return_attention else logits


def _check(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"EDMDBN {field} must be one of {list(allowed)}, got {value!r}")
