"""MADV-Net (papers/madv-net.txt) under LOSO: texture clip, depth clip and AU vector.

  python -m mer_jax.main --config configs/madvnet.py --workdir /tmp/madvnet        (paper settings; GPU)
  python -m mer_jax.main --config configs/madvnet.py:smoke --workdir /tmp/madv_s   (CPU, tiny network)
On the synthetic corpus (the default) the depth clip is the corpus's rendered depth; on a licensed corpus set
--config.features.depth=depth_anything --config.features.depth_weights=<Depth Anything V2 Small
model.safetensors> (README, "Depth Anything weights"), or --config.features.depth=none
--config.model.use_depth=False to run without the depth path. "paper" values come from section 4.2
(implementation details); the network's sizes are ours where the paper gives none (mer_jax/models/madvnet.py,
docs/deviations.md). `model.input_size` / `features.size` and `model.num_frames` / `features.num_frames` are
shared values: setting either sets both.
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None):
    config = common.get_base_config()

    size = ml_collections.FieldReference(112)      # ours: the paper states no input size
    frames = ml_collections.FieldReference(16)     # ours: the paper states no frame count
    config.model = {
        "name": "madvnet",
        "num_frames": frames,
        "input_size": size,
        "use_depth": True,           # paper: texture, depth and AU paths (section 3.1)
        "use_au": True,
        "depth_fusion": "channels",  # ours: depth as a 4th channel of Eq. 2's clip | stream (its own encoder)
        "dims": (64, 192, 384),      # ours (CvT-13's widths)
        "depths": (1, 2, 10),        # ours (CvT-13)
        "heads": (1, 3, 6),          # ours (CvT-13)
        "mlp_ratio": 4.0,
        "qkv_kernel": 3,             # Eq. 1's depthwise s x s (CvT: 3)
        "conv_branch_input": "embedding",   # Eq. 17 reads the 3-D embedding (ours: or "encoder")
        "au_widths": (64, 64),       # ours
        "ib_gate_init": 5.0,         # ours
        "ib_beta": 0.01,             # Eq. 8's beta (ours: no value given)
        "au_loss_weight": 1.0,       # Eq. 18 (sum of the terms)
        "freq_weights": (1.0, 1.0, 1.0),   # Eq. 20-23's alpha, beta, gamma (ours: no values given)
    }
    config.features = {
        "kind": "madvnet_inputs",
        "size": size,
        "num_frames": frames,
        "depth": "stored",           # stored (synthetic corpus) | depth_anything | none
        "depth_input_size": 518,     # Depth Anything V2's processor
        "depth_weights": ml_collections.config_dict.placeholder(str),   # Depth Anything V2 Small model.safetensors
        "missing_apex": "midpoint",  # the clip runs onset..offset; the apex is not read
        "cache_dir": ml_collections.config_dict.placeholder(str),
    }
    config.augment = {"variants": 1, "online": True, "flip": True, "max_rotation_deg": 0.0, "max_shift_px": 4,
                      "max_noise": 0.0}  # ours: the paper names no augmentation

    t = config.train
    t.num_epochs = 300           # paper: CosineAnnealingLR over 300 epochs
    t.batch_size = 64            # paper
    t.learning_rate = 5e-5       # paper
    t.weight_decay = 0.05        # paper (AdamW)
    t.schedule = "cosine"        # paper (to 0: its minimum learning rate is not given)
    t.b1 = 0.9                   # AdamW defaults
    t.b2 = 0.999
    t.loss = "focal"             # paper Eq. 19: alpha = mu, gamma = lambda (no values given)
    t.focal_gamma = 2.0          # ours (Lin et al.'s)
    t.class_weights = "none"     # mu = 1 for every class
    t.compute_dtype = "bfloat16"   # paper: FP16 (bfloat16 on TPUs and recent GPUs; float32 on CPU is faster)
    t.fold_chunk = "auto"
    t.eval_batch_size = 64

    if arg == "smoke":
        # A tiny network on the 6-subject smoke corpus: every part runs end to end on a CPU.
        config.dataset.name = "synthetic_me/smoke"
        size.set(16)
        frames.set(4)
        config.model.update(dims=(4, 8, 8), depths=(1, 1, 1), heads=(1, 2, 2), au_widths=(6, 5),
                            embed_strides=((1, 2, 2), (1, 2, 2), (1, 2, 2)))
        t.num_epochs = 2
        t.batch_size = 8
        t.learning_rate = 1e-3
        t.compute_dtype = "float32"
        t.fold_chunk = 0
        t.fold_conv = "grouped"      # compile-dominated at this size
        t.eval_every_epochs = 1
        t.checkpoint_every_epochs = 1
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/madvnet.py variant {arg!r}; expected none or 'smoke'")
    return config
