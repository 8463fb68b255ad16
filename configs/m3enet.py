"""M3ENet (Zhao, Liu and Yang, Sensors 2025) under LOSO on the built-in synthetic corpus.

  python -m mer_jax.main --config configs/m3enet.py --workdir /tmp/m3enet
  python -m mer_jax.main --config configs/m3enet.py:smoke --workdir /tmp/m3enet_smoke
Flow-stream ablation on precomputed 28 x 28 flow images (the `precomputed_flow` corpus):
  python -m mer_jax.main --config configs/m3enet.py --workdir /tmp/m3enet_flow \
    --config.dataset.name=precomputed_flow --config.dataset.manual_dir=DIR \
    --config.model.streams=flow --config.model.input_size=28
Values marked "paper" come from the M3ENet paper, section 4.1.4 (training) and section 3 (inputs).
`model.input_size` and `features.size` are one shared value: setting either sets both.
"""
import dataclasses

import ml_collections

from configs import common
from mer_jax.features.flow_tvl1 import TVL1Params


def get_config(arg: str | None = None):
    config = common.get_base_config()

    size = ml_collections.FieldReference(48)   # paper: inputs resized to 48 x 48
    # streams: all | flow | rgb | single_rgb (paper Table 3 ablations; mer_jax/models/m3enet.py)
    config.model = {"name": "m3enet", "streams": "all", "input_size": size}

    config.features = {
        # auto: keyframe_flow (TV-L1 flow + grey key frames computed from the frames) on frame corpora,
        # precomputed_flow (the corpus's own flow images) on flow corpora
        "kind": "auto",
        "size": size,
        "flow_size": 48,     # keyframe_flow; paper: flow computed on the resized frames
        # keyframe_flow: Dual TV-L1 (paper section 3.1) implementation, jax_tvl1 (on the accelerator,
        # batched; mer_jax/features/tvl1_jax.py) or opencv_tvl1 (OpenCV's DualTVL1 on the host, clip by clip)
        "flow": "jax_tvl1",
        "batch_size": 64,    # keyframe_flow with jax_tvl1: frame pairs per device call (throughput only)
        "tvl1": dataclasses.asdict(TVL1Params()),   # OpenCV's DualTVL1 defaults; no paper pins them
        "value_scale": 1 / 255,   # precomputed_flow: 0..255 image values -> [0, 1]
        "channel_order": "rgb",   # precomputed_flow: the file's (u, v, strain), the flow streams' order
        # clips with no annotated apex (SMIC; some CASME II, SAMM, MMEW, CAS(ME)^2 rows): dc_rois spots it
        # (DFR-Net section 3.1.1; mer_jax/features/apex_spotting.py), midpoint keeps the builder's midpoint
        "missing_apex": "dc_rois",
        "cache_dir": ml_collections.config_dict.placeholder(str),  # default ~/.cache/mer_jax/features
    }
    config.augment = {"variants": 5, "flip": True, "max_rotation_deg": 8.0, "max_noise": 0.1}  # paper: 5 variants

    t = config.train
    t.num_epochs = 50        # paper
    t.batch_size = 128       # paper
    t.learning_rate = 1e-3   # paper
    t.weight_decay = 0.05    # paper
    t.b1 = 0.9
    t.b2 = 0.999             # paper: "momentum coefficient beta 0.999"
    t.schedule = "cosine"    # paper
    t.loss = "focal"         # paper: focal loss, gamma 2, inverse-frequency alpha
    t.class_weights = "inverse_frequency"   # paper: alpha_t = 1 - n_t / N
    t.focal_gamma = 2.0

    if arg == "smoke":
        # A few steps on the 6-subject smoke corpus: exercises every part in well under a minute on CPU.
        config.dataset.name = "synthetic_me/smoke"
        t.num_epochs = 4
        t.batch_size = 32
        t.eval_every_epochs = 2
        t.checkpoint_every_epochs = 2
        config.augment.variants = 2
        # Compile time dominates so short a run; the loop form (one convolution per fold, the CPU default)
        # doubles it for a 6-fold chunk and pays back only over longer runs (docs/benchmarks.md).
        t.fold_conv = "grouped"
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/m3enet.py variant {arg!r}; expected none or 'smoke'")
    return config
