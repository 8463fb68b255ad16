"""Training RAFT (mer_jax/features/raft.py) on synthetic FlyingChairs-style pairs, for users without
torchvision's weights.

`pretrain(config, workdir)` is what `python -m mer_jax.main --config configs/raft.py` runs:
1. training on pairs from mer_jax/data/synthetic/flying_shapes.py, fresh every step (drawn on a host
   thread one step ahead), with RAFT's sequence loss (Teed and Deng, ECCV 2020, Eq. 7):
   sum_i gamma^(N-1-i) |f_i - f_gt|_1 over the N upsampled flows of the updates, each term the mean
   over pixels and the two components (RAFT's train.py), gamma 0.8;
2. AdamW with gradients clipped to a global norm of 1.0 and a linear one-cycle schedule (RAFT's
   train.py: torch's OneCycleLR over num_steps + 100 steps, 5% warm-up from lr / 25, linear decay to
   lr / 25 / 1e4);
3. evaluation on held-out generator pairs and on mer_jax/data/synthetic/flow_pairs.py's pairs (grey,
   given to RAFT as RGB): the endpoint error of the trained RAFT next to JAX TV-L1's
   (mer_jax.features.tvl1_jax, OpenCV's defaults) and next to predicting zero flow, on the same pairs.
Writes `<workdir>/checkpoint` (mer_jax.features.raft.load_raft reads it), scalars (mer_jax.train.writers)
and `<workdir>/results.json`.
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from mer_jax.data.synthetic.flow_pairs import endpoint_error, known_flow_pairs
from mer_jax.data.synthetic.flying_shapes import FlyingShapesConfig, flying_shapes
from mer_jax.features.raft import RAFT, init_raft, raft_flow, save_raft
from mer_jax.features.tvl1_jax import tvl1_flow_batch
from mer_jax.train import writers

log = logging.getLogger(__name__)


def sequence_loss(flows: jax.Array, truth: jax.Array, gamma: float) -> jax.Array:
    """RAFT's loss: sum over updates i of gamma^(N-1-i) x mean |flows[i] - truth|. flows [N, B, H, W, 2],
    truth [B, H, W, 2]."""
    weights = gamma ** jnp.arange(flows.shape[0] - 1, -1, -1, dtype=jnp.float32)
    return (weights * jnp.abs(flows - truth).mean(axis=(1, 2, 3, 4))).sum()


def one_cycle(peak: float, total_steps: int, pct_start: float) -> optax.Schedule:
    """torch's OneCycleLR(anneal_strategy="linear", three_phase=False, div_factor=25,
    final_div_factor=1e4): linear from peak / 25 up to peak over pct_start of the steps, then down to
    peak / 25 / 1e4."""
    warmup = max(int(pct_start * total_steps), 1)
    return optax.join_schedules([optax.linear_schedule(peak / 25, peak, warmup),
                                 optax.linear_schedule(peak, peak / 25 / 1e4, total_steps - warmup)], [warmup])


def make_optimizer(train) -> optax.GradientTransformation:
    """Clip to global norm `train.clip_norm`, then AdamW on RAFT's one-cycle schedule."""
    schedule = one_cycle(train.learning_rate, train.num_steps + train.schedule_extra_steps, train.pct_start)
    return optax.chain(optax.clip_by_global_norm(train.clip_norm),
                       optax.adamw(schedule, b1=train.b1, b2=train.b2, eps=train.eps,
                                   weight_decay=train.weight_decay))


def _to_model_range(images: jax.Array) -> jax.Array:
    """uint8 0..255 -> [-1, 1], as raft_flow prepares frames."""
    return images.astype(jnp.float32) / 127.5 - 1.0


def make_step(graphdef, optimizer: optax.GradientTransformation, num_updates: int, gamma: float):
    """jit(step)(params, rest, opt_state, batch) -> (params, rest, opt_state, {"loss", "epe"}); `rest` is
    the non-parameter state (the large variant's BatchNorm statistics, updated in training mode)."""
    def loss_fn(params, rest, batch):
        model = nnx.merge(graphdef, params, rest)
        flows = model(_to_model_range(batch["image1"]), _to_model_range(batch["image2"]),
                      num_updates=num_updates, train=True, all_updates=True)
        epe = jnp.linalg.norm(flows[-1] - batch["flow"], axis=-1).mean()
        _, _, rest = nnx.split(model, nnx.Param, ...)
        return sequence_loss(flows, batch["flow"], gamma), (epe, rest)

    @jax.jit
    def step(params, rest, opt_state, batch):
        (loss, (epe, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, {"loss": loss, "epe": epe}

    return step


def _batches(data: FlyingShapesConfig, batch_size: int, seed: int):
    """Training batches {"image1", "image2", "flow"} drawn on a host thread one step ahead of the device."""
    def draw(step):
        image1, image2, flow, _ = flying_shapes(data, batch_size, (seed, 0, step))
        return {"image1": image1, "image2": image2, "flow": flow}

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        step = 0
        pending = pool.submit(draw, step)
        while True:
            batch = pending.result()
            step += 1
            pending = pool.submit(draw, step)
            yield batch


def compare_flows(model: RAFT, first: np.ndarray, second: np.ndarray, truth: np.ndarray, num_updates: int,
                  batch_size: int, border: int) -> dict:
    """Mean endpoint errors (flow_pairs.endpoint_error, `border` px margin left out) of RAFT, JAX TV-L1
    (on the frames' grey mean) and zero flow, and RAFT's and TV-L1's per pair, for uint8 RGB frames
    [N, H, W, 3] and true flows [N, H, W, 2]."""
    raft = np.concatenate([np.asarray(raft_flow(model, first[i:i + batch_size], second[i:i + batch_size],
                                                num_updates=num_updates))
                           for i in range(0, len(first), batch_size)])
    grey = lambda x: np.rint(x.astype(np.float32).mean(-1)).astype(np.uint8)
    tvl1 = np.asarray(tvl1_flow_batch(grey(first), grey(second)))
    per_pair = {name: endpoint_error(flow, truth, border) for name, flow in
                (("raft", raft), ("tvl1", tvl1), ("zero", np.zeros_like(truth)))}
    return {"pairs": len(first), **{f"{name}_epe": float(e.mean()) for name, e in per_pair.items()},
            "raft_epe_per_pair": per_pair["raft"].tolist(), "tvl1_epe_per_pair": per_pair["tvl1"].tolist()}


def evaluate(model: RAFT, config) -> dict:
    """EPEs of RAFT next to TV-L1 on held-out generator pairs and on flow_pairs.known_flow_pairs."""
    ev = config.eval
    data = FlyingShapesConfig(**config.data.to_dict())
    image1, image2, flow, _ = flying_shapes(data, ev.num_pairs, (config.seed, 1))
    first, second, known = known_flow_pairs(ev.known_pairs, size=ev.known_pairs_size, seed=config.seed)
    rgb = lambda x: np.repeat(x[..., None], 3, -1)
    args = dict(num_updates=ev.num_updates, batch_size=ev.batch_size, border=ev.border)
    return {"flying_shapes": compare_flows(model, image1, image2, flow, **args),
            "known_flow_pairs": compare_flows(model, rgb(first), rgb(second), known, **args)}


def pretrain(config, workdir) -> dict:
    """Train RAFT `config.variant` from random weights, save it, evaluate it; returns what
    `<workdir>/results.json` holds."""
    start = time.time()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train = config.train
    model = init_raft(config.variant, config.seed)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    optimizer = make_optimizer(train)
    step = make_step(graphdef, optimizer, train.num_updates, train.gamma)
    opt_state = optimizer.init(params)
    writer = writers.create_writer(workdir)
    batches = _batches(FlyingShapesConfig(**config.data.to_dict()), train.batch_size, config.seed)
    metrics = None
    bar = tqdm(range(train.num_steps), desc="raft", disable=not train.progress)
    for i in bar:
        params, rest, opt_state, metrics = step(params, rest, opt_state, next(batches))
        if (i + 1) % train.log_every == 0 or i + 1 == train.num_steps:
            scalars = {f"train/{k}": float(v) for k, v in metrics.items()}
            writer.write_scalars(i + 1, scalars)
            bar.set_postfix(loss=f"{scalars['train/loss']:.3f}", epe=f"{scalars['train/epe']:.3f}")
    batches.close()
    train_time = time.time() - start
    model = nnx.merge(graphdef, params, rest)
    checkpoint = workdir / "checkpoint"
    save_raft(checkpoint, model, config.variant)
    evaluation = evaluate(model, config)
    writer.write_scalars(train.num_steps, {f"eval/{part}/{name}": values[name]
                                           for part, values in evaluation.items()
                                           for name in ("raft_epe", "tvl1_epe")})
    writer.flush()
    writer.close()
    results = {"variant": config.variant, "steps": train.num_steps,
               "final": {k: float(v) for k, v in metrics.items()}, **evaluation, "checkpoint": str(checkpoint),
               "train_time_s": train_time, "wall_time_s": time.time() - start, "config": config.to_dict()}
    (workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    for part in evaluation:
        print(f"RAFT {config.variant} after {train.num_steps} steps, {part} ({evaluation[part]['pairs']} pairs): "
              f"EPE {evaluation[part]['raft_epe']:.3f} px, TV-L1 {evaluation[part]['tvl1_epe']:.3f} px, "
              f"zero flow {evaluation[part]['zero_epe']:.3f} px")
    log.info("RAFT checkpoint -> %s", checkpoint)
    return results
