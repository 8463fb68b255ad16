"""Adaptive DSTNet (papers/adaptive-dstnet.txt) under LOSO, or leave-one-dataset-out across corpora.

  python -m mer_jax.main --config configs/dstnet.py --workdir /tmp/dstnet \
      --config.features.magnifier=RUNS/magnifier/checkpoint --config.features.raft=raft_large.pth
  python -m mer_jax.main --config configs/dstnet.py:composite ...       (MEGC2019 composite, adaptive alpha)
  python -m mer_jax.main --config configs/dstnet.py:cross_dataset ...   (LODO over SMIC, CASME II, SAMM)
  python -m mer_jax.main --config configs/dstnet.py:smoke --workdir /tmp/dstnet_smoke \
      --config.features.magnifier=... --config.features.raft=...      (CPU, small sizes)
The magnifier comes from `configs/magnifier.py` (pre-trained, then fine-tuned on the corpus); RAFT from
torchvision's raft_large / raft_small state_dict (.pth, converted on load) or from `configs/raft.py`.
Values marked "paper" come from section 4.1; "ours" are choices where it is silent (docs/deviations.md).
`model.input_size` and `features.size` are one shared value.
"""
import ml_collections

from configs import common

ALPHAS = (3.0, 4.0, 5.0, 6.0, 7.0)   # paper section 4.1 / 4.3.5: initial 3, maximum 7


def get_config(arg: str | None = None):
    config = common.get_base_config()

    size = ml_collections.FieldReference(256)      # paper Table 1: 256 x 256 x 3 inputs
    config.model = {
        "name": "dstnet",
        "input_size": size,
        "streams": "both",           # paper; spatial | temporal: Table 2 / 5 single streams
        "image_channels": 3,
        "flow_channels": 3,          # paper Table 9: three-channel MDOF (ours: u, v, |flow|)
        "fusion": "concat",          # ours: the paper says only "fused"
        "pooling": "avg",            # paper section 3.4: average pooling
        "fc_relu": True,             # ours
        "dropout_rate": 0.0,         # paper names none
        "spatial_stages": 3,         # paper Table 1 (Table 4 ablates 2-4)
        "temporal_layers": 3,        # paper Table 1 (Table 4 ablates 3-5)
        "blocks_per_stage": 2,       # paper Table 1
    }
    config.features = {
        "kind": "dstnet_inputs",
        "size": size,
        "alphas": ALPHAS,            # magnification factors stored per clip
        "raft_updates": 12,          # torchvision's default
        "batch_size": 8,
        "magnifier": ml_collections.config_dict.placeholder(str),   # magnifier checkpoint folder (required)
        "raft": ml_collections.config_dict.placeholder(str),        # .pth (torchvision) or configs/raft.py checkpoint
        "raft_variant": "large",     # for a .pth: large | small
        "eval_alpha": 3.0,           # ours: the factor test clips are magnified by without the adaptive loop
        "missing_apex": "dc_rois",
        "cache_dir": ml_collections.config_dict.placeholder(str),
    }
    config.augment = {"variants": 1, "online": False, "flip": False, "max_rotation_deg": 0.0, "max_noise": 0.0}

    t = config.train
    t.num_epochs = 50            # paper
    t.batch_size = 4             # paper
    t.learning_rate = 1e-3       # paper
    t.weight_decay = 5e-4        # paper (Adam with weight decay; ours: decoupled, AdamW)
    t.schedule = "constant"      # paper names none
    t.loss = "cross_entropy"     # paper
    t.b1 = 0.9
    t.b2 = 0.999
    t.balance_per_class = 150    # paper: magnified apexes at several alphas, 150 per class in every fold
    t.adaptive_threshold = 0.0   # 0: no adaptive loop; the paper uses 0.85 on composite and cross-dataset
    t.eval_batch_size = 32
    t.fold_chunk = "auto"

    if arg == "composite":
        config.dataset.name = "megc2019_cde"
        t.adaptive_threshold = 0.85   # paper section 4.1
    elif arg == "cross_dataset":
        config.dataset.name = "megc2019_cde"
        config.dataset.protocol = "lodo"   # paper section 4.2: leave one dataset out
        t.adaptive_threshold = 0.85
    elif arg == "smoke":
        config.dataset.name = "synthetic_me/smoke"
        size.set(64)                 # RAFT's smallest (4 pyramid levels at 1/8)
        config.features.alphas = (3.0, 4.0, 5.0)
        config.features.raft_updates = 3
        t.num_epochs = 2
        t.batch_size = 8
        t.balance_per_class = 12
        t.adaptive_threshold = 0.85
        t.fold_chunk = 0
        t.fold_conv = "grouped"      # compile-dominated at this size
        t.eval_every_epochs = 1
        t.checkpoint_every_epochs = 1
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/dstnet.py variant {arg!r}; expected none, 'composite', "
                         "'cross_dataset' or 'smoke'")
    return config
