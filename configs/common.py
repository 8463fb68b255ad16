"""Knobs every network shares; each network's config file starts from `get_base_config()`."""
import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.dataset = ml_collections.ConfigDict()
    config.dataset.name = "synthetic_me/default"   # TFDS name[/config]; built on first use
    config.dataset.data_dir = ml_collections.config_dict.placeholder(str)   # TFDS data_dir (default ~/tensorflow_datasets)
    config.dataset.manual_dir = ml_collections.config_dict.placeholder(str)  # licensed archive for real corpora
    config.dataset.label_scheme = "megc3"            # taxonomy.LABEL_SCHEMES
    config.dataset.protocol = "loso"                 # loso | lodo | kfold
    config.dataset.kfold_k = 5
    config.dataset.shuffle_labels = False            # label-permutation control: UF1 must fall to chance
    # Licensed-corpus builders (tfds_builders/corpus_builder.py CorpusConfig); a changed value builds its own config.
    config.dataset.skip_bad_samples = False          # list bad samples as exclusions instead of failing the build
    config.dataset.image_size = -1                   # stored frame side; -1 keeps the builder config's own

    config.mesh = ml_collections.ConfigDict()
    config.mesh.fold_devices = -1                 # -1: all devices not used by 'data'
    config.mesh.data_devices = 1

    config.train = ml_collections.ConfigDict()
    # Folds trained at once: 0 = all, 1 = one after another, 'auto' = as many as the devices' memory holds
    # (train/fold_memory.py), with at most memory_fraction of the free memory in use
    config.train.fold_chunk = ml_collections.config_dict.FieldReference(0, field_type=object)
    config.train.memory_fraction = 0.8
    # How vmapped folds run convolutions: auto (loop on CPU, grouped elsewhere) | loop | grouped
    # (mer_jax/models/fold_conv.py)
    config.train.fold_conv = "auto"
    config.train.selection = "last"               # last | val | test_selected (flagged, leaks test labels)
    config.train.num_val_subjects = 1             # for selection = val, drawn from each fold's training subjects
    config.train.val_metric = "uf1"               # selection = val ranks eval epochs by: uf1 | loss (cross-entropy)
    # >0: a fold stops once this many epochs passed without a better validation score (selection = val;
    # masked updates under vmap, train/trainer.py); 0: every fold trains num_epochs
    config.train.early_stopping_patience = 0
    # inputs standardised per channel with each fold's training-sample mean and std (DFR-Net), e.g. ("apex",)
    config.train.standardise_inputs = ()
    config.train.eval_every_epochs = 5
    config.train.eval_batch_size = 256
    config.train.checkpoint_every_epochs = 10
    config.train.stop_after_epochs = 0            # >0: checkpoint and stop after this many epochs (resume later)
    config.train.progress = True
    config.train.label_smoothing = 0.0
    # Per-class loss weights from each fold's training labels: none | inverse_frequency (1 - n_i / N, the
    # focal loss's alpha; M3ENet) | balanced (M / (K M_i); EDMDBN on SAMM). train/losses.py
    config.train.class_weights = "none"
    # >0: each fold trains on this many (sample, variant) pairs per class instead of all pairs (Adaptive
    # DSTNet's alpha balancing: 150); train/sampling.py balanced_pool
    config.train.balance_per_class = 0
    # >0: predictions run Adaptive DSTNet's Algorithm 1 over the stored magnification factors, stopping at
    # this top-1 confidence (paper: 0.85); needs inputs with one version per factor (features.kind=dstnet_inputs)
    config.train.adaptive_threshold = 0.0
    config.train.warmup_epochs = 0                # schedule = warmup_cosine: linear warm-up epochs
    config.train.weight_decay_on = "all"          # all | matrices (no decay on biases and norms)
    # float32 | bfloat16: the dtype the networks compute in; parameters, BatchNorm statistics, optimizer
    # state, losses and metrics stay float32 (mer_jax/models/precision.py)
    config.train.compute_dtype = "float32"

    config.init = ml_collections.ConfigDict()
    # A folder of released per-fold weights, one PyTorch state_dict per held-out subject named by the
    # subject id as the corpus writes it (e.g. `sub01.pth`, `s01.pth`, `006.pth`). When set, nothing is
    # trained: each LOSO fold's model is loaded from its file and predicts its held-out subject.
    config.init.per_fold_weights = ml_collections.config_dict.placeholder(str)
    # The workdir of a finished run: every fold starts from the model that run reports for its fold `from_fold`
    # (empty: its first fold), e.g. MADV-Net's SMIC pre-training before fine-tuning on the target corpus. The
    # runs must share no subject (checked); the network and class count must match.
    config.init.from_run = ml_collections.config_dict.placeholder(str)
    config.init.from_fold = ""
    return config
