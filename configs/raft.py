"""Training RAFT on synthetic FlyingChairs-style pairs (mer_jax/train/raft_training.py), for users without
torchvision's raft_large / raft_small weights.

  python -m mer_jax.main --config configs/raft.py --workdir /tmp/raft                 (GPU)
  python -m mer_jax.main --config configs/raft.py:smoke --workdir /tmp/raft_smoke     (CPU, ~2 min: compiles)
  ... --config.variant=small
"paper": Teed and Deng, "RAFT", ECCV 2020 (its FlyingChairs stage); "reference": the authors' train.py
and train_standard.sh (chairs stage), whose optimizer settings torchvision's reference script repeats;
"ours": no source gives a value (docs/deviations.md, "RAFT training on synthetic pairs"). Writes
<workdir>/checkpoint (features.raft=<workdir>/checkpoint in configs/dstnet.py reads it) and
<workdir>/results.json (EPE of the trained RAFT next to TV-L1's).
"""
import ml_collections


def get_config(arg: str | None = None):
    config = ml_collections.ConfigDict()
    config.job = "raft"
    config.seed = 0
    config.variant = "large"           # large | small (torchvision's raft_large / raft_small)
    config.data = {                    # mer_jax/data/synthetic/flying_shapes.py
        "height": 368,                 # reference: chairs crops 368 x 496
        "width": 496,
        "displacement_px": (0.1, 40.0),  # ours: sub-pixel (micro-expressions) up to FlyingChairs-like motions
        "rotation_share": 0.3,         # ours
        "scale_share": 0.3,            # ours
        "num_objects": (2, 8),         # ours (FlyingChairs: 1 background, several chairs)
        "object_radius": (0.08, 0.3),  # ours
        "noise_std": 0.01,             # ours (the reference adds colour jitter, no noise)
    }
    config.train = {
        "num_steps": 100_000,          # reference: chairs stage
        "batch_size": 10,              # reference: train_standard.sh
        "learning_rate": 4e-4,         # paper and reference
        "weight_decay": 1e-4,          # paper and reference (AdamW)
        "b1": 0.9,                     # AdamW defaults (reference)
        "b2": 0.999,
        "eps": 1e-8,                   # reference
        "clip_norm": 1.0,              # reference: clip_grad_norm_ 1.0
        "pct_start": 0.05,             # reference: OneCycleLR, linear
        "schedule_extra_steps": 100,   # reference: OneCycleLR over num_steps + 100
        "num_updates": 12,             # reference: 12 updates in training
        "gamma": 0.8,                  # paper Eq. 7 (chairs and things)
        "log_every": 100,
        "progress": True,
    }
    config.eval = {
        "num_pairs": 64,               # held-out generator pairs (seed stream (seed, 1))
        "num_updates": 24,             # reference: validate_chairs runs 24 updates
        "batch_size": 8,
        "known_pairs": 12,             # mer_jax/data/synthetic/flow_pairs.py (its 6 kinds of field, twice)
        "known_pairs_size": 64,
        "border": 4,                   # px left out of the EPE (flow_pairs.endpoint_error's default)
    }

    if arg == "smoke":
        # raft_small at 64 x 64 for a few dozen steps: every part runs end to end on a CPU.
        config.variant = "small"
        config.data.update(height=64, width=64, displacement_px=(0.1, 8.0), num_objects=(1, 4),
                           object_radius=(0.12, 0.35))
        config.train.update(num_steps=24, batch_size=2, num_updates=4, log_every=8)
        config.eval.update(num_pairs=4, num_updates=4, batch_size=4, known_pairs=6)
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/raft.py variant {arg!r}; expected none or 'smoke'")
    return config
