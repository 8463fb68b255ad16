"""DFR-Net (DynamicFusionResNet; papers/dfr-net.txt) under LOSO. No public code exists: the paper is the spec.

  python -m mer_jax.main --config configs/dfrnet.py --workdir /tmp/dfrnet              (paper settings)
  python -m mer_jax.main --config configs/dfrnet.py:smoke --workdir /tmp/dfrnet_smoke  (CPU, a minute)
Values marked "paper" come from section 4.3 (implementation details) and section 3; "ours" are choices
where the paper is silent (docs/deviations.md, "DFR-Net"). `model.input_size`, `features.size` and
`features.flow_size` are one shared value: setting one sets all three. The apex and difference inputs are
RGB (`features.apex_difference=rgb`, `model.image_channels=3`); for grey set `features.apex_difference=grey`
and `model.image_channels=1` together.
Ablations: `model.fusion` add | multiply | concat | proposed (Table 4), `model.attention` none | ca | sa |
both (Tables 6-7), `model.num_layers` 1-4 (Tables 8-9).
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None):
    config = common.get_base_config()

    size = ml_collections.FieldReference(112)    # ours: the paper gives no input size (dfrnet.py docstring)
    config.model = {
        "name": "dfrnet",
        "input_size": size,
        "num_layers": 3,             # paper: 3 ResNet layers (Tables 8-9)
        "attention": "both",         # paper: CA and SA in every residual block (Eq. 12-14)
        "fusion": "proposed",        # paper: Eq. 9-10
        "image_channels": 3,         # ours: RGB apex and difference
        "shallow_features": 32,      # ours
        "fused_features": 64,        # ours
        "temporal_hidden": ml_collections.config_dict.placeholder(int),   # ours: None = fused_features
        "temporal_gate": "relu",     # paper wording ("two convolutional layers and ReLU"); sigmoid: SE reading
        "widths": (64, 128, 256, 512),   # ResNet-18 (paper: "standard ResNet [11]")
        "blocks_per_layer": 2,       # ResNet-18
        "ca_reduction": 16,          # ours (CBAM's)
        "sa_kernel": 7,              # ours (CBAM's)
    }
    config.features = {
        "kind": "keyframe_flow",     # TV-L1 flow onset -> apex, strain, apex frame, |apex - onset|
        "size": size,
        "flow_size": size,
        "strain": "dfrnet",          # paper Eq. 7
        "apex_difference": "rgb",    # paper Eq. 8 and the spatial branch's apex frame
        "missing_apex": "dc_rois",   # paper section 3.1.1: D&C-RoIs spots SMIC's apex frames
        "cache_dir": ml_collections.config_dict.placeholder(str),
    }
    # paper: horizontal flipping and random cropping; ours: crops as shifts of up to 8 px at 112 (edges
    # extended), drawn afresh every step
    config.augment = {"variants": 1, "online": True, "flip": True, "max_rotation_deg": 0.0, "max_shift_px": 8,
                      "max_noise": 0.0}

    t = config.train
    t.num_epochs = 100           # paper: up to 100 epochs
    t.batch_size = 32            # paper
    t.learning_rate = 1e-5       # paper
    t.schedule = "constant"      # paper names no schedule
    t.loss = "cross_entropy"     # paper
    t.b1 = 0.9                   # Adam defaults (paper: Adam)
    t.b2 = 0.999
    t.weight_decay = 0.0         # Adam, no weight decay
    t.selection = "val"          # paper: early stopping on a validation loss; keeps each fold's best epoch
    t.val_metric = "loss"        # paper
    t.early_stopping_patience = 10   # paper
    t.num_val_subjects = 3       # ours: the paper does not size its validation split
    t.eval_every_epochs = 1      # patience counts epochs
    t.standardise_inputs = ("apex", "flow", "difference")   # paper: the training set's mean and std
    t.fold_chunk = "auto"
    t.eval_batch_size = 64

    if arg == "smoke":
        # Narrow network on the 6-subject smoke corpus: every part runs end to end on a CPU.
        config.dataset.name = "synthetic_me/smoke"
        size.set(24)
        config.model.update(shallow_features=4, fused_features=8, widths=(8, 16, 32, 64), num_layers=2,
                            ca_reduction=4, sa_kernel=3)
        config.augment.max_shift_px = 2
        t.num_epochs = 3
        t.batch_size = 8
        t.learning_rate = 1e-3
        t.early_stopping_patience = 1
        t.num_val_subjects = 1
        t.fold_chunk = 0
        t.fold_conv = "grouped"   # at this size compiling dominates, and one grouped convolution compiles fastest
        t.checkpoint_every_epochs = 1
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/dfrnet.py variant {arg!r}; expected none or 'smoke'")
    return config
