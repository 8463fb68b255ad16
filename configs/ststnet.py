"""STSTNet (Liong et al., FG 2019) under LOSO on shared 28 x 28 flow images (`precomputed_flow`).

  python -m mer_jax.main --config configs/ststnet.py --workdir runs/ststnet \
    --config.dataset.manual_dir=DIR
  # the released per-fold weights (christy1206/STSTNet STSTNet_Weights/), evaluated, no training:
  python -m mer_jax.main --config configs/ststnet.py --workdir runs/ststnet_released \
    --config.dataset.manual_dir=DIR --config.init.per_fold_weights=STSTNet_Weights
  # a minute on CPU, on the built-in synthetic corpus (flow computed from its frames):
  python -m mer_jax.main --config configs/ststnet.py:smoke --workdir runs/ststnet_smoke
DIR holds the flow images and their label CSV (tfds_builders/precomputed_flow/README.md).
Values marked "official" come from christy1206/STSTNet `main.py` (reference-implementations.md section 4).
`model.input_size` and `features.size` are one shared value: setting either sets both.
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None):
    config = common.get_base_config()
    config.dataset.name = "precomputed_flow"   # needs --config.dataset.manual_dir (licensed data)

    size = ml_collections.FieldReference(28)   # official: 28 x 28 x 3 (u, v, strain) images
    config.model = {"name": "ststnet", "input_size": size, "dropout_rate": 0.5}   # official: Dropout(0.5)

    config.features = {
        "kind": "auto",         # precomputed_flow on flow corpora, keyframe_flow on frame corpora
        "size": size,
        # official: cv2.imread pixels fed unchanged, i.e. B, G, R channel order and values 0..255
        # (not normalised); the released weights expect exactly this input.
        "channel_order": "bgr",
        "value_scale": 1.0,
        # clips with no annotated apex (SMIC; some CASME II, SAMM, MMEW, CAS(ME)^2 rows): dc_rois spots it
        # (DFR-Net section 3.1.1; mer_jax/features/apex_spotting.py), midpoint keeps the builder's midpoint
        "missing_apex": "dc_rois",
        "cache_dir": ml_collections.config_dict.placeholder(str),
    }
    config.augment = {"variants": 1, "flip": False, "max_rotation_deg": 0.0, "max_noise": 0.0}  # official: none

    t = config.train
    t.num_epochs = 800       # official
    t.batch_size = 256       # official
    t.learning_rate = 5e-5   # official: Adam
    t.weight_decay = 0.0     # official: torch Adam without weight decay
    t.b1 = 0.9               # torch Adam defaults
    t.b2 = 0.999
    t.schedule = "constant"  # official: no schedule
    t.loss = "cross_entropy"   # official: nn.CrossEntropyLoss, unweighted
    t.selection = "last"     # official: the model after the last epoch
    t.eval_every_epochs = 50
    t.checkpoint_every_epochs = 100

    if arg == "smoke":
        # Built-in synthetic smoke corpus (no licensed data); a few epochs with a larger learning rate.
        config.dataset.name = "synthetic_me/smoke"
        t.num_epochs = 4
        t.batch_size = 32
        t.learning_rate = 1e-3
        t.eval_every_epochs = 2
        t.checkpoint_every_epochs = 2
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/ststnet.py variant {arg!r}; expected none or 'smoke'")
    return config
