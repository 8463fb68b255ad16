"""EDMDBN (entire-detail motion dual-branch network; papers/edmdbn.txt) under LOSO.

  python -m mer_jax.main --config configs/edmdbn.py --workdir /tmp/edmdbn             (paper settings)
  python -m mer_jax.main --config configs/edmdbn.py:public --workdir /tmp/edmdbn_pub  (public code's)
  python -m mer_jax.main --config configs/edmdbn.py:smoke --workdir /tmp/edmdbn_smoke (CPU, a minute)
Values marked "paper" come from section 4.3 (implementation details) and section 3; "public" from the
public code (likemby/EDMDBN, reference-implementations.md section 1). On SAMM the paper weights the loss:
--config.train.class_weights=balanced (w_i = M / (K M_i)). `model.input_size` / `features.size` and
`model.num_frames` / `features.num_frames` are shared values: setting either sets both.
The full model at 224 x 224 is meant for an accelerator; `train.fold_chunk=auto` trains as many folds at
once as the device memory holds (`model.remat=True` fits more).
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None):
    config = common.get_base_config()

    size = ml_collections.FieldReference(224)      # paper: H = W = 224
    frames = ml_collections.FieldReference(8)      # paper: T = 8 difference frames
    config.model = {
        "name": "edmdbn",
        "branches": "both",          # both | entire | detail (paper Table 6 ablations)
        "fusion": "add",             # add (paper) | concat (paper Table 9)
        "input_size": size,
        "num_frames": frames,
        "embed_dim": 128,            # paper: C = 128
        "depths": (2, 2, 6),         # public: custom_swin
        "num_heads": (4, 8, 16),     # public
        "window_size": (8, 7, 7),    # public
        "detail_patch": (8, 4, 4),   # paper section 3.3: 8 x 4 x 4 x 3 blocks
        "entire_patch": (1, 4, 4),   # paper: 4 x 4 x 3 blocks; (8, 4, 4) = the public code's padded layout
        "drop_path_rate": 0.2,       # public
        "token_attention": True,     # paper: Swin-T with accumulated attention (Table 8)
        "remat": False,              # recompute block activations in the backward pass (memory)
    }
    config.features = {
        "kind": "motion_differences",
        "size": size,
        "num_frames": frames,
        "detail": "clip",            # clip (paper: differences of the sequence) | keyframes (public code)
        "normalise": "imagenet",     # public: ImageNet mean/std before the differences
        # clips with no annotated apex (SMIC; some CASME II, SAMM, MMEW, CAS(ME)^2 rows): dc_rois spots it
        "missing_apex": "dc_rois",
        "cache_dir": ml_collections.config_dict.placeholder(str),
    }
    # paper: online flip, random crop, rotation in [-4, 4] degrees; public: RandomCrop(224, padding=4, edge)
    config.augment = {"variants": 1, "online": True, "flip": True, "max_rotation_deg": 4.0, "max_shift_px": 4,
                      "max_noise": 0.0}

    t = config.train
    t.num_epochs = 60            # paper
    t.batch_size = 4             # paper
    t.learning_rate = 5e-5       # paper: warm-up to 5e-5
    t.schedule = "warmup_cosine"   # paper: linear warm-up, then cosine decay
    t.warmup_epochs = 15         # paper
    t.loss = "cross_entropy"     # paper Eq. 3
    t.class_weights = "none"     # paper: all ones, "balanced" on SAMM
    t.b1 = 0.9                   # public: AdamW betas (0.9, 0.999)
    t.b2 = 0.999
    t.weight_decay = 1e-8        # public (the paper names AdamW only)
    t.weight_decay_on = "matrices"   # public: no decay on biases and 1-D parameters
    t.fold_chunk = "auto"
    t.eval_batch_size = 32

    if arg == "public":
        t.learning_rate = 1e-4   # public
        t.warmup_epochs = 10     # public
        t.label_smoothing = 0.1  # public
        config.features.detail = "keyframes"   # public: sampling_strategy=3 (onset, apex, offset)
    elif arg == "smoke":
        # Tiny network on the 6-subject smoke corpus: every part runs end to end on a CPU.
        config.dataset.name = "synthetic_me/smoke"
        size.set(32)
        frames.set(2)
        config.model.update(embed_dim=8, depths=(1, 1, 1), num_heads=(1, 1, 2), window_size=(2, 2, 2),
                            detail_patch=(2, 4, 4))
        t.num_epochs = 2
        t.warmup_epochs = 1
        t.batch_size = 8
        t.learning_rate = 1e-3
        t.fold_chunk = 0
        t.eval_every_epochs = 1
        t.checkpoint_every_epochs = 1
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/edmdbn.py variant {arg!r}; expected none, 'public' or 'smoke'")
    return config
