"""Off-ApexNet (Gan et al., Signal Processing: Image Communication 2019) under LOSO on shared flow images.

  python -m mer_jax.main --config configs/offapexnet.py --workdir runs/offapexnet \
    --config.dataset.manual_dir=DIR
  python -m mer_jax.main --config configs/offapexnet.py:smoke --workdir runs/offapexnet_smoke
DIR holds the flow images and their label CSV (tfds_builders/precomputed_flow/README.md).
The authors released no code; the network and the training values follow meb (tvaranka/meb:
`OffApexNet`, and `core.Config` defaults: Adam lr 1e-4, batch 32, 200 epochs, last epoch), see
docs/deviations.md, "Off-ApexNet". meb's weight decay 1e-3 is torch Adam's L2 term added to the
gradient; the trainer has only AdamW's decoupled decay, so it is left at 0 here.
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None):
    config = common.get_base_config()
    config.dataset.name = "precomputed_flow"   # needs --config.dataset.manual_dir (licensed data)

    size = ml_collections.FieldReference(28)   # paper and meb: 28 x 28
    config.model = {"name": "offapexnet", "input_size": size, "dropout_rate": 0.5}   # meb: dropout 0.5

    config.features = {
        "kind": "auto",         # precomputed_flow on flow corpora, keyframe_flow on frame corpora
        "size": size,
        "channel_order": "rgb",   # the file's (u, v, strain): the network reads u and v as channels 0, 1
        "value_scale": 1 / 255,   # meb feeds min-max normalised flow in [0, 1]
        # clips with no annotated apex (SMIC; some CASME II, SAMM, MMEW, CAS(ME)^2 rows): dc_rois spots it
        # (DFR-Net section 3.1.1; mer_jax/features/apex_spotting.py), midpoint keeps the builder's midpoint
        "missing_apex": "dc_rois",
        "cache_dir": ml_collections.config_dict.placeholder(str),
    }
    config.augment = {"variants": 1, "flip": False, "max_rotation_deg": 0.0, "max_noise": 0.0}  # meb: none

    t = config.train
    t.num_epochs = 200       # meb default
    t.batch_size = 32        # meb default
    t.learning_rate = 1e-4   # meb default (Adam)
    t.weight_decay = 0.0     # meb's coupled L2 1e-3 is not available (module docstring)
    t.b1 = 0.9
    t.b2 = 0.999
    t.schedule = "constant"  # meb: no scheduler
    t.loss = "cross_entropy"
    t.selection = "last"     # meb: the model after the last epoch
    t.eval_every_epochs = 20
    t.checkpoint_every_epochs = 50

    if arg == "smoke":
        config.dataset.name = "synthetic_me/smoke"   # built-in, no licensed data
        t.num_epochs = 4
        t.eval_every_epochs = 2
        t.checkpoint_every_epochs = 2
    elif arg not in (None, ""):
        raise ValueError(f"unknown configs/offapexnet.py variant {arg!r}; expected none or 'smoke'")
    return config
