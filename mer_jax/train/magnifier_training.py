"""Pre-training and fine-tuning of the motion magnifier (papers/adaptive-dstnet.txt section 3.2).

`pretrain(config, workdir)` is what `python -m mer_jax.main --config configs/magnifier.py` runs:
1. pre-training on synthetic examples (mer_jax/data/synthetic/magnification.py; the paper pre-trains on
   10,431 macro-expression images, which are licensed and whose training pairs it does not describe);
2. the paper's transfer learning as our self-supervised fine-tuning on a micro-expression corpus
   (`finetune_corpus`, empty = skip): onset as A, the frame at fraction t of the way to the apex as B,
   the apex as target with alpha = 1 / t (t taken from the frame actually picked) (docs/deviations.md);
3. evaluation on held-out synthetic layered scenes: PSNR against the target and the magnification the
   output holds, measured with TV-L1 against the target's motion (mer_jax.features.magnify.motion_ratio).
Loss (Oh et al.'s, reference/reference-implementations.md section 5), each term weight 1:
  L1(output, target) + L1(texture(C), texture(A)) + L1(shape(C), shape(B)),
C being B's geometry in A's colours (the generator's docstring). Adam, lr 1e-4, b1 0.9, batch 4.
Writes `<workdir>/checkpoint` (mer_jax.features.magnify.load_magnifier reads it), TensorBoard scalars
(mer_jax.train.writers) and `<workdir>/magnifier_summary.json`.
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

from mer_jax.data.corpus import load_corpus
from mer_jax.data.synthetic.magnification import MagnificationDataConfig, magnification_examples
from mer_jax.features.magnifier_net import MagnifierNet
from mer_jax.features.magnify import motion_ratio, save_magnifier
from mer_jax.train import writers

log = logging.getLogger(__name__)


def losses(net: MagnifierNet, batch: dict) -> dict:
    """The three loss terms and their sum for a batch {"a", "b", "c", "target", "alpha"}."""
    textures, shapes = net.encode(jnp.concatenate([batch["a"], batch["b"], batch["c"]]))
    (texture_a, _, texture_c), (shape_a, shape_b, shape_c) = (jnp.split(textures, 3), jnp.split(shapes, 3))
    out = net.decode(texture_a, net.manipulate(shape_a, shape_b, batch["alpha"]))
    terms = {"output": jnp.abs(out - batch["target"]).mean(), "texture": jnp.abs(texture_c - texture_a).mean(),
             "shape": jnp.abs(shape_c - shape_b).mean()}
    return {**terms, "loss": terms["output"] + terms["texture"] + terms["shape"]}


def make_step(graphdef, optimizer: optax.GradientTransformation):
    """jit(step)(params, opt_state, batch) -> (params, opt_state, loss terms)."""
    def loss_fn(params, batch):
        terms = losses(nnx.merge(graphdef, params), batch)
        return terms["loss"], terms

    @jax.jit
    def step(params, opt_state, batch):
        grads, terms = jax.grad(loss_fn, has_aux=True)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, terms

    return step


def _fit(graphdef, params, batches, num_steps: int, train, writer, prefix: str, first_step: int, progress: bool):
    """Adam over `num_steps` batches from the iterator `batches`; scalars every `train.log_every` steps."""
    optimizer = optax.adam(train.learning_rate, b1=train.b1, b2=train.b2)
    step = make_step(graphdef, optimizer)
    opt_state = optimizer.init(params)
    terms = None
    bar = tqdm(range(num_steps), desc=prefix, disable=not progress)
    for i in bar:
        params, opt_state, terms = step(params, opt_state, next(batches))
        if (i + 1) % train.log_every == 0 or i + 1 == num_steps:
            scalars = {f"{prefix}/{k}": float(v) for k, v in terms.items()}
            writer.write_scalars(first_step + i + 1, scalars)
            bar.set_postfix(loss=f"{scalars[f'{prefix}/loss']:.4f}")
    return params, {k: float(v) for k, v in terms.items()}


def _synthetic_batches(data: MagnificationDataConfig, batch_size: int, seed: int):
    """Training batches drawn on a host thread one step ahead of the device (without the generator's exact
    motion fields, which only evaluation checks read)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        step = 0
        pending = pool.submit(magnification_examples, data, batch_size, (seed, 0, step))
        while True:
            batch = pending.result()
            step += 1
            pending = pool.submit(magnification_examples, data, batch_size, (seed, 0, step))
            yield {k: v for k, v in batch.items() if k != "motion"}


def corpus_triplets(corpus, fractions, size: int) -> tuple[dict, dict]:
    """Self-supervised fine-tuning triplets of a frame corpus ({"a", "b", "c", "target", "alpha"} in [-1, 1],
    c = b) and counts {"triplets", "clips_without_a_frame_between"}: per clip and fraction t, A = onset,
    B = frame onset + round(t (apex - onset)), target = apex, alpha = (apex - onset) / (B - onset). Clips
    whose apex is less than 2 frames after the onset have no frame between and give no triplet."""
    import cv2

    if corpus.kind != "frames":
        raise ValueError(f"finetune_corpus {corpus.name} is a flow corpus; the magnifier fine-tunes on frames")
    resize = lambda f: cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
    out = {k: [] for k in ("a", "b", "target", "alpha")}
    skipped = 0
    for i in range(len(corpus)):
        onset, apex = int(corpus.onset[i]), int(corpus.apex[i])
        middles = sorted({onset + round(t * (apex - onset)) for t in fractions} - {onset, apex})
        if apex - onset < 2 or not middles:
            skipped += 1
            continue
        frames = corpus.frames(i, [onset, apex, *middles])
        for b, frame in zip(middles, frames[2:]):
            out["a"].append(resize(frames[0]))
            out["b"].append(resize(frame))
            out["target"].append(resize(frames[1]))
            out["alpha"].append((apex - onset) / (b - onset))
    if not out["a"]:
        raise ValueError(f"finetune_corpus {corpus.name}: no clip has a frame between onset and apex")
    arrays = {k: np.asarray(v, np.float32) for k, v in out.items()}
    return {**arrays, "c": arrays["b"]}, {"triplets": len(arrays["a"]), "clips_without_a_frame_between": skipped}


def _corpus_batches(triplets: dict, batch_size: int, seed: int):
    rng = np.random.default_rng(seed)
    while True:
        pick = rng.choice(len(triplets["a"]), batch_size, replace=len(triplets["a"]) < batch_size)
        yield {k: v[pick] for k, v in triplets.items()}


def evaluate(net: MagnifierNet, examples: dict, batch_size: int = 16) -> dict:
    """PSNR (dB, [-1, 1] images, peak-to-peak 2) of the clipped output against the target (and of B
    against the target, the do-nothing baseline), and per example the magnification the output holds next
    to alpha: alpha x motion_ratio(A, output, target), the output's TV-L1 motion against the target's.
    The target holds exactly alpha times B's motion (the generator renders it), and measuring it with the
    same flow is what makes the reading accurate (mer_jax.features.magnify.motion_ratio)."""
    graphdef, state = nnx.split(net)
    forward = jax.jit(lambda state, a, b, alpha: nnx.merge(graphdef, state)(a, b, alpha))
    outs = np.concatenate([np.asarray(forward(state, examples["a"][i:i + batch_size], examples["b"][i:i + batch_size],
                                              examples["alpha"][i:i + batch_size]))
                           for i in range(0, len(examples["a"]), batch_size)])
    psnr = lambda x: 10 * np.log10(4.0 / np.maximum(((x - examples["target"]) ** 2).mean((1, 2, 3)), 1e-12))
    unit = lambda x: (x + 1) / 2
    ratio = examples["alpha"] * motion_ratio(unit(examples["a"]), unit(outs), unit(examples["target"]))
    relative = np.abs(ratio / examples["alpha"] - 1)
    return {"psnr_db": float(psnr(outs).mean()), "psnr_b_db": float(psnr(examples["b"]).mean()),
            "alpha": examples["alpha"].tolist(), "measured_magnification": ratio.tolist(),
            "relative_error_max": float(relative.max()), "relative_error_mean": float(relative.mean())}


def pretrain(config, workdir) -> dict:
    """Pre-train (and fine-tune when `finetune_corpus` is set) the magnifier; returns the summary that
    `<workdir>/magnifier_summary.json` holds."""
    start = time.time()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    fields = config.magnifier.to_dict()
    # Initialised in one jitted call (eagerly, every layer's initialiser would compile on its own).
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: MagnifierNet(**fields, rngs=nnx.Rngs(config.seed))))
    params = jax.jit(lambda: nnx.state(MagnifierNet(**fields, rngs=nnx.Rngs(config.seed))))()
    data = MagnificationDataConfig(**config.data.to_dict())
    train = config.train
    writer = writers.create_writer(workdir)
    params, pre_terms = _fit(graphdef, params, _synthetic_batches(data, train.batch_size, config.seed),
                             train.num_steps, train, writer, "pretrain", 0, train.progress)
    summary = {"pretrain": {"steps": train.num_steps, "final": pre_terms}}
    if config.finetune_corpus:
        ft = config.finetune
        corpus = load_corpus(config.finetune_corpus, data_dir=ft.data_dir, manual_dir=ft.manual_dir)
        triplets, counts = corpus_triplets(corpus, ft.fractions, data.size)
        if counts["clips_without_a_frame_between"]:
            log.warning("finetune_corpus %s: %d clips have no frame between onset and apex and give no triplet",
                        corpus.name, counts["clips_without_a_frame_between"])
        params, ft_terms = _fit(graphdef, params, _corpus_batches(triplets, ft.batch_size, config.seed),
                                ft.num_steps, ft, writer, "finetune", train.num_steps, train.progress)
        summary["finetune"] = {"corpus": corpus.name, "steps": ft.num_steps, **counts, "final": ft_terms}
    net = nnx.merge(graphdef, params)
    checkpoint = workdir / "checkpoint"
    save_magnifier(checkpoint, net, fields)
    ev = config.eval
    held_out = MagnificationDataConfig(**{**config.data.to_dict(), "alpha_range": ev.alpha_range,
                                          "motion_px": ev.motion_px, "face_fraction": 0.0, "background_only_prob": 0.0,
                                          "colour_jitter": 0.0, "noise_std": (0.0, 0.0)})
    evaluation = evaluate(net, magnification_examples(held_out, ev.num_examples, (config.seed, 1)))
    writer.write_scalars(train.num_steps, {"eval/psnr_db": evaluation["psnr_db"],
                                           "eval/relative_error_max": evaluation["relative_error_max"]})
    writer.flush()
    writer.close()
    summary.update(final_loss=(summary.get("finetune") or summary["pretrain"])["final"]["loss"],
                   held_out=evaluation, checkpoint=str(checkpoint), wall_time_s=time.time() - start,
                   config=config.to_dict())
    (workdir / "magnifier_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    log.info("magnifier: final loss %.4f, held-out PSNR %.2f dB (B: %.2f dB), magnification error max %.1f%% "
             "-> %s", summary["final_loss"], evaluation["psnr_db"], evaluation["psnr_b_db"],
             100 * evaluation["relative_error_max"], checkpoint)
    return summary
