"""MADV-Net (Kong, You, Lv, Sensors 2025; papers/madv-net.txt): 3-D video tokens, convolution-projection
transformer pyramid with low / middle / high-level heads, AU encoder with an information bottleneck.

No public code exists. Inputs (section 3.1, "texture path, 3D depth image path, AU coding path"):
    inputs["texture"] [B, T, S, S, 3]  RGB clip          inputs["depth"] [B, T, S, S, 1]  per-pixel depth clip
    inputs["au"]      [B, A]           AU vector over data.taxonomy.AU_VOCAB (A = 18; multi-hot, or the
                                       AU intensity difference V_x - V_t of section 3.2.2 where known)
Visual encoder, three stages s = 1, 2, 3 (the "cascaded pyramid"; conv_attention.py):
    3-D-video-to-tokens (Eq. 2): Conv3d embed_kernels[s] / embed_strides[s] -> BN -> MaxPool3d
        pool_window / pool_strides[s]; stage 1 reads the clip, later stages the previous stage's grid
    + learnable position embedding (Eq. 13); the last stage also prepends the class token (Eq. 13)
    depths[s] transformer layers (Eq. 16) of width dims[s], heads[s], MLP ratio mlp_ratio, whose
        Q, K, V come from depthwise qkv_kernel x qkv_kernel conv -> BN -> pointwise (Eq. 1)
    Defaults at 16 x 112 x 112: tokens 8 x 14 x 14 (64-d), 4 x 7 x 7 (192-d), 2 x 4 x 4 + class (384-d).
Heads:
    level s (low / middle / high, Eq. 20-23): mean over the stage's grid tokens -> LayerNorm -> Linear(K)
    f_Att = MLP(f_N) (Eq. 15): final class token -> LayerNorm -> Linear(d, d) -> GELU
    f_Conv = F_Conv(f_{p x q}) (Eq. 17): the last stage's embedded tokens -> Conv3d 3x3x3 -> BN -> ReLU -> mean
    AU encoder (Eq. 3-12): au_widths Linear -> ReLU -> bottleneck layers; its last features join the fusion
    y = softmax(F_LR(f_Att, f_Conv, f_AU)) (Eq. 14): Linear on the concatenation -> logits [B, K] (returned;
        the softmax belongs to the loss and the prediction)
Loss (Eq. 18) L = L_Multiclass + L_freq + L_AU: L_Multiclass is the trainer's `train.loss` on the returned
logits (Eq. 19 is train/losses.focal_loss with alpha = mu for every class and gamma = lambda); the model
adds L_freq and L_AU through `auxiliary_losses` (train/step.py), from values its training call keeps:
    L_freq = freq_weights . (CE(low), CE(mid), CE(high))                       Eq. 20-23 (alpha, beta, gamma)
    L_AU = au_loss_weight * (ib_beta * sum_i KL_i + BCE(f_n(v_{n-1}), one-hot y))      Eq. 8, 11, 12

Information bottleneck, mean-only form (Eq. 4-8; the printed Eq. 8 is garbled). Layer i of the AU encoder
computes h_i = ReLU(W_i v_{i-1} + b_i) and standardises it, z_i = (h_i - mu_i) / sigma_i (a BatchNorm
without scale or shift: batch statistics in training, running ones in eval). Its bottleneck
passes v~_i = r_i * z_i + (1 - r_i) * eps with the gate r_i = sigmoid(a_i) (learnable a_i, one per feature;
the "Sigmoid ... to regularize the compression parameters" of section 5) and eps ~ N(0, 1) = Q(v~_i), the
variational prior of Eq. 5 / 7. Then KL[P(v~_i | v_{i-1}) || Q(v~_i)] = 1/2 sum_j [r^2 z^2 + (1-r)^2 - 1
- 2 log(1-r)]; "only the mean value is optimized" (Eq. 8) keeps the term that holds the mean,
KL_i = 1/2 sum_j (r_ij z_ij)^2 (Eq. 8's beta (v_i - mu_i)^2), drops the terms in r alone, and replaces eps
by its mean 0 (no sampling), so v_i = r_i * z_i. We find no reading of Eq. 8's second term (its operators
are lost in the text); the relevance term is the last level's (Eq. 9-11): the binary cross entropy of a
classifier f_n on v_{n-1} against the one-hot label, as Eq. 11 writes it. Eq. 12 sums the layers.

Choices where the paper is silent (constructor fields; docs/deviations.md, "MADV-Net"):
- `num_frames` = 16, `input_size` = 112: the paper states neither; 16 frames at 112 x 112 is the clip
  of the video baselines it compares with (C3D [37], Former-DFER [43], NR-DFERNet [47]).
- Widths, depths and heads `dims` (64, 192, 384), `depths` (1, 2, 10), `heads` (1, 3, 6), `mlp_ratio` 4 and
  `qkv_kernel` 3: CvT-13's (the convolution-projection transformer section 3.2.1 describes, Fig. 2), since
  the paper gives no sizes. The three stages are the pyramid's low / middle / high levels (the
  "low-dimensional, middle-dimensional and high-dimensional feature streams" of contribution 2).
- Tokenizer kernels and strides (`embed_kernels`, `embed_strides`, `pool_window`, `pool_strides`) bring
  a 16 x 112 x 112 clip to the grids above (stage 1 as CvT's 7x7 / 4 embedding, plus the MaxPool of Eq. 2).
- K and V are not subsampled (CvT subsamples them by 2): Eq. 24's 3 L d^2 + L^2 d term counts full length.
- `depth_fusion` = "channels": Eq. 2's clip V in R^{T x H x W x C x D} carries texture and depth together,
  so depth is a fourth input channel of one encoder; "stream" gives depth its own encoder (the "depth
  image path" of section 3.1), their features concatenated at every head. `use_depth` / `use_au` = False
  drop a path (its input is then not read: `inputs_for`).
- `conv_branch_input` = "embedding": Eq. 17's f_{p x q} is the 3-D embedding's output (Eq. 13);
  "encoder" feeds the conv branch the last transformer layer's grid instead.
- The AU features enter the final fusion F_LR (section 3.1: "integrating the AU coding features with
  the local features of dynamic visual attention"); `au_widths` (64, 64), gate init `ib_gate_init` 5
  (r = 0.993), `ib_beta` 0.01, `au_loss_weight` 1, `freq_weights` (1, 1, 1): the paper gives no values.
- Every stage adds its own learnable position embedding (Eq. 13 names one, for the transformer's input);
  the class token exists only in the last stage (as CvT); level heads pool their stage's grid tokens by mean.
- Layouts the paper names without detail: F_MLP (Eq. 15) is LayerNorm -> Linear(d, d) -> GELU; F_Conv
  (Eq. 17) Conv3d 3x3x3 -> BN -> ReLU -> global mean; each "head perceptron" LayerNorm -> Linear(K).
- Eq. 2 has no activation after its BatchNorm, and none is added; the transformer layers are pre-norm
  with an attention output projection (conv_attention.py).

Size and work (K = 3, defaults; tests/test_madvnet.py): 25,479,951 parameters (closed form in the test;
the last stage's 10 layers hold 17.7M, F_Conv 4.0M). The paper reports neither parameters nor FLOPs.
XLA counts 3.85 GFLOPs per sample (complexity.flops_per_sample). `complexity_terms` evaluates section 3.2.5:
0.62G multiplies in the 3-D convolutions + 0.94G by Eq. 25 = 1.56G; the matrix products Eq. 24 leaves out
(attention output projection, attention x V, depthwise projections, conv branch, heads, AU encoder) add
0.31G; 2 x (1.56G + 0.31G) is 2.9% below XLA's count, the rest being element-wise work.
"""
from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mer_jax.data.taxonomy import AU_VOCAB
from mer_jax.models import conv_attention as ca
from mer_jax.models import layers

DEPTH_FUSIONS = ("channels", "stream")
CONV_BRANCH_INPUTS = ("embedding", "encoder")
LEVELS = ("low", "mid", "high")


def _check(field: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"MADVNet {field} must be one of {list(allowed)}, got {value!r}")


def stage_grids(num_frames: int, input_size: int, embed_kernels, embed_strides, pool_window, pool_strides):
    """The token grid (T, H, W) after each stage's 3-D-video-to-tokens module (conv, then pool)."""
    grid, grids = (num_frames, input_size, input_size), []
    for kernel, stride, pool_stride in zip(embed_kernels, embed_strides, pool_strides):
        grid = tuple(ca.conv_output(n, k, s) for n, k, s in zip(grid, kernel, stride))
        grid = tuple(ca.conv_output(n, k, s) for n, k, s in zip(grid, pool_window, pool_stride))
        grids.append(grid)
    return grids


class VisualStage(nnx.Module):
    """3-D-video-to-tokens, position embedding (+ class token), `depth` transformer layers."""

    def __init__(self, in_features: int, dim: int, depth: int, heads: int, grid: tuple[int, int, int], *,
                 kernel, stride, pool_window, pool_stride, qkv_kernel: int, mlp_ratio: float, class_token: bool,
                 rngs: nnx.Rngs):
        self.embed = ca.VideoToTokens(in_features, dim, kernel, stride, pool_window, pool_stride, rngs=rngs)
        self.pos = nnx.Param(layers.TRANSFORMER_INIT(rngs.params(), (1,) + tuple(grid) + (dim,)))
        self.cls = nnx.Param(layers.TRANSFORMER_INIT(rngs.params(), (1, 1, dim))) if class_token else None
        self.layers = nnx.List([ca.TransformerLayer(dim, heads, qkv_kernel, mlp_ratio, rngs=rngs)
                                for _ in range(depth)])

    def __call__(self, x: jax.Array, *, train: bool):
        """-> (embedded grid, encoded grid [B, T, H, W, d], class token [B, 1, d] or None)."""
        embedded = self.embed(x, train=train)
        grid = embedded + self.pos[...].astype(embedded.dtype)
        cls = None
        if self.cls is not None:
            cls = jnp.broadcast_to(self.cls[...].astype(grid.dtype), (grid.shape[0], 1, grid.shape[-1]))
        for layer in self.layers:
            grid, cls = layer(grid, cls, train=train)
        return embedded, grid, cls


class VisualEncoder(nnx.Module):
    """The stages of one visual path; returns its per-level features, f_Att and f_Conv (module docstring)."""

    def __init__(self, in_features: int, *, grids, dims, depths, heads, embed_kernels, embed_strides, pool_window,
                 pool_strides, qkv_kernel, mlp_ratio, conv_branch_input: str, rngs: nnx.Rngs):
        widths = (in_features,) + tuple(dims)
        last = len(dims) - 1
        self.stages = nnx.List([
            VisualStage(widths[s], dims[s], depths[s], heads[s], grids[s], kernel=embed_kernels[s],
                        stride=embed_strides[s], pool_window=pool_window, pool_stride=pool_strides[s],
                        qkv_kernel=qkv_kernel, mlp_ratio=mlp_ratio, class_token=s == last, rngs=rngs)
            for s in range(len(dims))])
        d = dims[-1]
        self.conv_branch_input = conv_branch_input
        self.att_norm = layers.transformer_layer_norm(d, rngs=rngs)                              # F_MLP, Eq. 15
        self.att_fc = layers.transformer_linear(d, d, rngs=rngs)
        self.conv = ca.conv3d(d, d, (3, 3, 3), use_bias=False, rngs=rngs)       # F_Conv, Eq. 17
        self.conv_norm = layers.batch_norm(d, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool):
        """-> ([level features [B, d_s]], f_Att [B, d], f_Conv [B, d])."""
        levels = []
        for stage in self.stages:
            embedded, x, cls = stage(x, train=train)
            levels.append(x.mean(axis=(1, 2, 3)))
        f_att = jax.nn.gelu(self.att_fc(self.att_norm(cls[:, 0])), approximate=False)
        conv_in = embedded if self.conv_branch_input == "embedding" else x
        f_conv = jax.nn.relu(self.conv_norm(self.conv(conv_in), use_running_average=not train)).mean(axis=(1, 2, 3))
        return levels, f_att, f_conv


class AUEncoder(nnx.Module):
    """AU feature encoder with per-layer mean-only information bottlenecks (module docstring, Eq. 3-12)."""

    def __init__(self, num_aus: int, widths, num_classes: int, *, gate_init: float, rngs: nnx.Rngs):
        sizes = (num_aus,) + tuple(widths)
        self.fcs = nnx.List([layers.linear(sizes[i], sizes[i + 1], rngs=rngs) for i in range(len(widths))])
        self.norms = nnx.List([nnx.BatchNorm(w, use_bias=False, use_scale=False, momentum=0.9, epsilon=1e-5,
                                             use_fast_variance=False, rngs=rngs) for w in widths])
        self.gates = nnx.List([nnx.Param(jnp.full((w,), gate_init, jnp.float32)) for w in widths])
        self.classifier = layers.linear(sizes[-1], num_classes, rngs=rngs)       # f_n, Eq. 9-11

    def __call__(self, x: jax.Array, *, train: bool):
        """-> (features v_{n-1} [B, w], sum over layers of the batch-mean KL_i). `classifier` (f_n) is applied
        by the model in training only."""
        kl = jnp.zeros((), jnp.float32)
        for fc, norm, gate in zip(self.fcs, self.norms, self.gates):
            z = norm(jax.nn.relu(fc(x)), use_running_average=not train)
            x = jax.nn.sigmoid(gate[...]).astype(z.dtype) * z
            kl = kl + 0.5 * jnp.sum(jnp.square(x.astype(jnp.float32)), axis=-1).mean()
        return x, kl


class MADVNet(nnx.Module):
    """MADV-Net; see the module docstring for the structure, losses and every choice."""

    INPUTS = ("texture", "depth", "au")     # all paths on; `inputs_for` gives the ablations' keys

    @staticmethod
    def inputs_for(use_depth: bool = True, use_au: bool = True, **_) -> tuple[str, ...]:
        return ("texture",) + (("depth",) if use_depth else ()) + (("au",) if use_au else ())

    @staticmethod
    def input_shapes(num_frames: int = 16, input_size: int = 112, num_aus: int = len(AU_VOCAB), **fields) -> dict:
        shapes = {"texture": (num_frames, input_size, input_size, 3), "depth": (num_frames, input_size, input_size, 1),
                  "au": (num_aus,)}
        return {key: shapes[key] for key in MADVNet.inputs_for(**fields)}

    def __init__(self, num_classes: int, *, rngs: nnx.Rngs, num_frames: int = 16, input_size: int = 112,
                 use_depth: bool = True, use_au: bool = True, depth_fusion: str = "channels",
                 num_aus: int = len(AU_VOCAB), dims=(64, 192, 384), depths=(1, 2, 10), heads=(1, 3, 6),
                 mlp_ratio: float = 4.0, qkv_kernel: int = 3,
                 embed_kernels=((3, 7, 7), (3, 3, 3), (3, 3, 3)), embed_strides=((1, 4, 4), (1, 2, 2), (1, 2, 2)),
                 pool_window=(3, 3, 3), pool_strides=((2, 2, 2), (2, 1, 1), (2, 1, 1)),
                 conv_branch_input: str = "embedding", au_widths=(64, 64), ib_gate_init: float = 5.0,
                 ib_beta: float = 0.01, au_loss_weight: float = 1.0, freq_weights=(1.0, 1.0, 1.0)):
        _check("depth_fusion", depth_fusion, DEPTH_FUSIONS)
        _check("conv_branch_input", conv_branch_input, CONV_BRANCH_INPUTS)
        per_stage = {"dims": dims, "depths": depths, "heads": heads, "embed_kernels": embed_kernels,
                     "embed_strides": embed_strides, "pool_strides": pool_strides, "freq_weights": freq_weights}
        if any(len(v) != len(LEVELS) for v in per_stage.values()):
            raise ValueError(f"MADVNet {', '.join(per_stage)} need one entry per pyramid level {LEVELS}, got "
                             + ", ".join(f"{k}={tuple(v)}" for k, v in per_stage.items()))
        self.num_frames, self.input_size, self.num_aus = num_frames, input_size, num_aus
        self.use_depth, self.use_au, self.depth_fusion = use_depth, use_au, depth_fusion
        self.ib_beta, self.au_loss_weight = ib_beta, au_loss_weight
        self.freq_weights = tuple(float(w) for w in freq_weights)
        grids = stage_grids(num_frames, input_size, embed_kernels, embed_strides, pool_window, pool_strides)
        encoder = lambda channels: VisualEncoder(
            channels, grids=grids, dims=dims, depths=depths, heads=heads, embed_kernels=embed_kernels,
            embed_strides=embed_strides, pool_window=pool_window, pool_strides=pool_strides, qkv_kernel=qkv_kernel,
            mlp_ratio=mlp_ratio, conv_branch_input=conv_branch_input, rngs=rngs)
        stacked = use_depth and depth_fusion == "channels"
        self.texture_encoder = encoder(4 if stacked else 3)
        self.depth_encoder = encoder(1) if use_depth and depth_fusion == "stream" else None
        streams = 2 if self.depth_encoder is not None else 1
        self.level_norms = nnx.List([layers.transformer_layer_norm(streams * d, rngs=rngs) for d in dims])
        self.level_heads = nnx.List([layers.transformer_linear(streams * d, num_classes, rngs=rngs) for d in dims])
        self.au_encoder = AUEncoder(num_aus, au_widths, num_classes, gate_init=ib_gate_init,
                                    rngs=rngs) if use_au else None
        fused = 2 * streams * dims[-1] + (au_widths[-1] if use_au else 0)
        self.fusion = layers.transformer_linear(fused, num_classes, rngs=rngs)        # F_LR, Eq. 14

    def _input(self, inputs: dict, key: str) -> jax.Array:
        if key not in inputs:
            needed = self.inputs_for(use_depth=self.use_depth, use_au=self.use_au)
            raise ValueError(f"MADVNet needs inputs[{key!r}] (it reads {list(needed)}; got {sorted(inputs)})")
        x = inputs[key]
        shape = self.input_shapes(num_frames=self.num_frames, input_size=self.input_size, num_aus=self.num_aus)[key]
        if tuple(x.shape[1:]) != shape:
            raise ValueError(f"MADVNet inputs[{key!r}] must be [B, {', '.join(map(str, shape))}], got {list(x.shape)}")
        return x

    def __call__(self, inputs: dict[str, jax.Array], *, train: bool) -> jax.Array:
        """Logits [B, K] of the fused head (Eq. 14). A training call keeps what `auxiliary_losses` reads as
        nnx.Intermediate variables on the model (the train step's merged copy; they are not Param or BatchStat
        state, so the step never returns them)."""
        texture = self._input(inputs, "texture")
        depth = self._input(inputs, "depth") if self.use_depth else None
        au = self._input(inputs, "au") if self.use_au else None
        if depth is not None and self.depth_encoder is None:
            texture = jnp.concatenate([texture, depth.astype(texture.dtype)], axis=-1)
        outputs = [self.texture_encoder(texture, train=train)]
        if self.depth_encoder is not None:
            outputs.append(self.depth_encoder(depth, train=train))
        levels = [jnp.concatenate(per_stream, -1) for per_stream in zip(*(o[0] for o in outputs))]
        features = [o[1] for o in outputs] + [o[2] for o in outputs]
        if self.au_encoder is not None:
            au_features, kl = self.au_encoder(au, train=train)
            features.append(au_features.astype(features[0].dtype))
        logits = self.fusion(jnp.concatenate(features, -1))
        if train:
            level_logits = tuple(head(norm(x)) for norm, head, x in zip(self.level_norms, self.level_heads, levels))
            self.level_logits = nnx.Intermediate(level_logits)
            if self.au_encoder is not None:
                self.au_terms = nnx.Intermediate((self.au_encoder.classifier(au_features), kl))
        return logits

    def auxiliary_losses(self, labels: jax.Array) -> dict[str, jax.Array]:
        """{"freq": L_freq (Eq. 20-23), "au": L_AU (Eq. 12)} for int `labels` [B], from the last training call."""
        if not hasattr(self, "level_logits"):
            raise ValueError("MADVNet.auxiliary_losses reads the values of a training call: call the model with "
                             "train=True first")
        ce = lambda logits: -jnp.take_along_axis(jax.nn.log_softmax(logits.astype(jnp.float32), -1),
                                                 labels[:, None], -1).mean()
        level_logits = self.level_logits.get_value()
        terms = {"freq": sum(w * ce(lg) for w, lg in zip(self.freq_weights, level_logits))}
        if self.au_encoder is not None:
            au_logits, kl = self.au_terms.get_value()
            au_logits = au_logits.astype(jnp.float32)
            one_hot = jax.nn.one_hot(labels, au_logits.shape[-1])
            bce = -(one_hot * jax.nn.log_sigmoid(au_logits) + (1 - one_hot) * jax.nn.log_sigmoid(-au_logits))
            terms["au"] = self.au_loss_weight * (self.ib_beta * kl + bce.sum(-1).mean())
        return terms


def _taps(size: int, kernel: int, stride: int) -> int:
    """(output position, kernel tap) pairs of one axis that fall inside the input (padding kernel // 2)."""
    pad = kernel // 2
    starts = np.arange(ca.conv_output(size, kernel, stride)) * stride - pad
    taps = np.arange(kernel)
    return int(np.sum((starts[:, None] + taps >= 0) & (starts[:, None] + taps < size)))


def _conv_macs(grid_in, kernel, stride, c_in: int, c_out: int) -> int:
    """Multiply-adds of a convolution over the taps inside its input (XLA skips zero padding)."""
    return math.prod(_taps(n, k, s) for n, k, s in zip(grid_in, kernel, stride)) * c_in * c_out


def complexity_terms(num_classes: int, **fields) -> dict[str, float]:
    """Multiply counts of one sample (section 3.2.5) for MADVNet(num_classes, **fields) (its defaults elsewhere).

    "conv3d": the 3-D-video-to-tokens convolutions, T H W C_out K_t K_h K_w C_in (T H W: output positions; the
    paper's formula at stride 1); "transformer": Eq. 25, sum over stages of N (3 L d^2 + L^2 d + 2 L d d_hidden),
    L the stage's tokens (with the class token), N its layers; "paper" their sum (section 3.2.5's total).
    "omitted": multiply-adds of the matrix products the paper's count leaves out: each layer's attention
    output projection (L d^2) and attention-times-values product (L^2 d), the depthwise Q/K/V convolutions,
    the conv branch, the f_Att MLP, the fusion head and the AU encoder (the level heads and the AU classifier
    f_n run in training only). Convolutions count only taps inside their input (as XLA
    does); the paper's dense T H W K C_in C_out counts the zero padding too.
    """
    f = {**_FIELD_DEFAULTS, **fields}
    num_frames, input_size, dims, depths = f["num_frames"], f["input_size"], f["dims"], f["depths"]
    embed_kernels, embed_strides, pool_strides = f["embed_kernels"], f["embed_strides"], f["pool_strides"]
    use_depth, use_au, au_widths = f["use_depth"], f["use_au"], f["au_widths"]
    grids = stage_grids(num_frames, input_size, embed_kernels, embed_strides, f["pool_window"], pool_strides)
    stacked = use_depth and f["depth_fusion"] == "channels"
    streams = [4 if stacked else 3] + ([1] if use_depth and f["depth_fusion"] == "stream" else [])
    conv3d = transformer = omitted = 0
    for c_in in streams:
        grid_in, widths = (num_frames, input_size, input_size), (c_in,) + tuple(dims)
        for s, (d, n, grid) in enumerate(zip(dims, depths, grids)):
            conv3d += _conv_macs(grid_in, embed_kernels[s], embed_strides[s], widths[s], d)
            length = math.prod(grid) + (s == len(dims) - 1)
            hidden = int(round(d * f["mlp_ratio"]))
            transformer += n * (3 * length * d * d + length * length * d + 2 * length * d * hidden)
            depthwise = 3 * grid[0] * _conv_macs(grid[1:], (f["qkv_kernel"],) * 2, (1, 1), d, 1)
            omitted += n * (length * d * d + length * length * d + depthwise)
            grid_in = grid
        d = dims[-1]
        omitted += _conv_macs(grids[-1], (3, 3, 3), (1, 1, 1), d, d) + d * d       # F_Conv, F_MLP
    au = sum(a * b for a, b in zip((f["num_aus"],) + tuple(au_widths), au_widths))
    fused = 2 * len(streams) * dims[-1] + (au_widths[-1] if use_au else 0)
    omitted += fused * num_classes + (au if use_au else 0)
    return {"conv3d": float(conv3d), "transformer": float(transformer), "paper": float(conv3d + transformer),
            "omitted": float(omitted)}


_FIELD_DEFAULTS = {name: p.default for name, p in inspect.signature(MADVNet.__init__).parameters.items()
                   if p.default is not inspect.Parameter.empty}
