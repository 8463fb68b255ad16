"""Pre-training of Adaptive DSTNet's motion magnifier (papers/adaptive-dstnet.txt section 3.2).

  python -m mer_jax.main --config configs/magnifier.py --workdir /tmp/magnifier              (GPU)
  python -m mer_jax.main --config configs/magnifier.py:smoke --workdir /tmp/magnifier_smoke  (CPU, seconds)
  ... --config.finetune_corpus=casme2 --config.finetune.manual_dir=DIR   (then fine-tune on CASME II)
"paper": papers/adaptive-dstnet.txt; "reference": Oh et al.'s deep_motion_mag code, whose network the
paper uses (reference/reference-implementations.md section 5); "ours": no source gives a value
(docs/deviations.md, "Motion magnifier"). Writes <workdir>/checkpoint (mer_jax.features.magnify) and
<workdir>/magnifier_summary.json.
"""
import ml_collections


def get_config(arg: str | None = None):
    config = ml_collections.ConfigDict()
    config.job = "magnifier"
    config.seed = 0
    config.magnifier = {           # mer_jax/features/magnifier_net.py
        "stem_features": 16,       # reference: c7s1-16
        "features": 32,            # reference
        "encoder_blocks": 3,       # reference
        "texture_blocks": 2,       # reference
        "shape_blocks": 2,         # reference
        "manipulator_blocks": 1,   # paper and reference: h = conv + 1 residual block
        "decoder_blocks": 9,       # reference
        "g_kernel": 3,             # paper: g = 3 x 3 convolution + ReLU (reference: 7 x 7)
        "manipulator": "paper",    # paper Eq. 1; "deep_motion_mag": S_b + h((alpha - 1) g(S_b - S_a))
    }
    config.data = {                # mer_jax/data/synthetic/magnification.py, all ours
        "size": 128,               # reference trains on 384 x 384 crops; DSTNet reads 256 x 256
        "alpha_range": (1.0, 10.0),
        "motion_px": (0.05, 1.0),
        "max_objects": 4,
        "background_motion_prob": 0.5,
        "background_only_prob": 0.2,
        "face_fraction": 0.25,
        "num_waves": 24,
        "max_frequency": 0.25,
        "colour_jitter": 0.1,
        "noise_std": (0.0, 0.01),  # reference adds noise to A, B and C (not to the target)
    }
    config.train = {
        "num_steps": 100_000,      # ours (the reference does not state its iterations)
        "batch_size": 4,           # reference
        "learning_rate": 1e-4,     # reference
        "b1": 0.9,                 # reference
        "b2": 0.999,               # Adam default
        "log_every": 100,
        "progress": True,
    }
    config.eval = {                # held-out synthetic layered scenes
        "num_examples": 32,
        "alpha_range": (2.0, 7.0),   # paper: alpha 3..7 in use (sections 4.1, 4.3.5)
        "motion_px": (0.3, 1.0),
    }
    # Paper: fine-tuned on the ME corpora after pre-training. Ours: self-supervised from clip timing
    # (mer_jax/train/magnifier_training.py). A TFDS corpus name, e.g. casme2; empty = no fine-tuning.
    config.finetune_corpus = ""
    config.finetune = {
        "data_dir": ml_collections.config_dict.placeholder(str),
        "manual_dir": ml_collections.config_dict.placeholder(str),
        "fractions": (0.25, 0.5),  # t: B is the frame t of the way from onset to apex, alpha = 1 / t
        "num_steps": 10_000,
        "batch_size": 4,
        "learning_rate": 1e-5,     # ours: a tenth of pre-training
        "b1": 0.9,
        "b2": 0.999,
        "log_every": 100,
    }

    if arg == "smoke":
        # A tiny magnifier and a few dozen steps: every part runs end to end on a CPU in seconds.
        config.magnifier.update(stem_features=4, features=8, encoder_blocks=1, texture_blocks=1, shape_blocks=1,
                                decoder_blocks=1)
        config.data.size = 64
        config.train.num_steps = 24
        config.train.log_every = 8
        config.eval.num_examples = 3
        config.finetune.num_steps = 8
        config.finetune.log_every = 4
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/magnifier.py variant {arg!r}; expected none or 'smoke'")
    return config
