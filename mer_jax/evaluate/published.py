"""The recognition results the papers publish, as data, with the protocol each paper used.

Every number is copied from the paper text in `papers/` (table or section named in `source`); nothing is
derived. Percentages are written as fractions. Parameter and FLOP counts are in
mer_jax/models/paper_figures.py, not here. `python -m mer_jax.report` sets runs against these rows.

Fields a paper leaves open are "unknown" (or `label_scheme=None` with the paper's class list in
`classes`), and `basis` quotes where we looked. Choices we made in reading the papers:
- MADV-Net's "Average Recognition Accuracy" is the mean of its per-class accuracies, and its Eq. 32
  defines a class's accuracy as TP_c / n_c, so it is stored as `uar`; its "Macro-F1" is Eq. 30 (the
  harmonic mean of macro precision and macro recall), not UF1, so it is stored as `f1_of_macro_pr`.
- "F1-score" in Adaptive DSTNet Table 6 and M3ENet Table 2 does not say how classes are averaged: `f1`.
- EDMDBN's selection is `test_selected`: the paper (section 4.3) names only 60 epochs, but its public
  code keeps the checkpoint with the best UF1 on the held-out subject
  (shared/reference/reference-implementations.md, sections 1 and 7).
- Composite parts (`part`) are the per-dataset scores of a model trained on the MEGC 2019 composite
  (LOSO), or of the held-out dataset (LODO), as the tables head them.
"""
from __future__ import annotations

import dataclasses

UNSTATED = "not stated"

METRICS = {
    "uf1": "UF1: mean of the per-class F1 scores",
    "uar": "UAR: mean of the per-class recalls",
    "accuracy": "accuracy over all samples",
    "f1": "F1-score; the paper does not say how classes are averaged",
    "precision": "precision; the paper does not say how classes are averaged",
    "recall": "recall; the paper does not say how classes are averaged",
    "auc": "area under the ROC curve",
    "f1_of_macro_pr": "MADV-Net Eq. 30: harmonic mean of macro precision and macro recall",
}
SELECTIONS = ("last", "val", "test_selected", "unknown")
PROTOCOLS = ("loso", "lodo", "unknown")
AGGREGATIONS = ("pooled", "per_fold_mean", "unknown")


@dataclasses.dataclass(frozen=True)
class Published:
    """One published result row.

    `corpus` is a TFDS builder name, or `builder/config-prefix` when the paper used one variant
    (`smic/hs`: SMIC high-speed). `part` names one dataset of a composite (a `per_dataset` key of
    results.json). `label_scheme` is a key of taxonomy.LABEL_SCHEMES, or None when no scheme of ours
    holds the paper's classes (listed in `classes`). `basis` says where the protocol, selection and
    aggregation come from.
    """
    network: str
    corpus: str
    protocol: str
    label_scheme: str | None
    classes: str
    selection: str
    aggregation: str
    metrics: dict
    source: str
    basis: str
    part: str | None = None
    variant: str = ""          # "adaptive": Adaptive DSTNet's adaptive-alpha inference loop
    note: str = ""


_DSTNET_BASIS = ("LOSO for single and composite datasets, LODO for cross-dataset (section 4.2); selection: "
                 "section 4.1 gives only \"epochs = 50\"; aggregation: not stated")
_DSTNET_SINGLE = ("Adaptive DSTNet Table 6 (single dataset; section 4.1: SMIC 164 samples, 3 classes; "
                  "CASME II 246 and SAMM 136 samples, 5 classes)")
_DSTNET_CDE = "Adaptive DSTNet Table 7 (MEGC 2019 composite, 442 samples, 3 classes)"
_DSTNET_LODO = "Adaptive DSTNet Table 8 (cross-dataset: the named dataset held out)"
_MEGC3 = "negative, positive, surprise"
_CASME2_5 = "happiness, surprise, disgust, repression, others"
_SAMM_5 = "happiness, anger, contempt, surprise, others"


def _dstnet() -> list[Published]:
    rows = []
    single = (("smic/hs", "megc3", _MEGC3, 0.7134, 0.7245),
              ("casme2", "casme2_5", "5 classes (not listed)", 0.7398, 0.7424),
              ("samm", "samm_5", "5 classes (not listed)", 0.7426, 0.7186))
    for corpus, scheme, classes, acc, f1 in single:
        rows.append(Published("dstnet", corpus, "loso", scheme, classes, "unknown", "unknown",
                              {"accuracy": acc, "f1": f1}, _DSTNET_SINGLE, _DSTNET_BASIS,
                              note="5-class schemes read as ours from the sample counts" if scheme != "megc3" else ""))
    # Table 7: (UF1, UAR) on CDE, SMIC, CASME II, SAMM; the adaptive loop runs on composite tasks (section 4.1).
    composite = {"": ((0.7979, 0.7758), (0.7041, 0.6953), (0.9287, 0.9232), (0.7604, 0.7054)),
                 "adaptive": ((0.7832, 0.7815), (0.7328, 0.7289), (0.8854, 0.8762), (0.7563, 0.7547))}
    for variant, scores in composite.items():
        for part, (uf1, uar) in zip((None, "smic", "casme2", "samm"), scores):
            rows.append(Published("dstnet", "megc2019_cde", "loso", "megc3", _MEGC3, "unknown", "unknown",
                                  {"uf1": uf1, "uar": uar}, _DSTNET_CDE, _DSTNET_BASIS, part=part, variant=variant))
    # Table 8: (Acc, UF1, UAR) with SMIC, CASME II, SAMM held out in turn.
    lodo = {"": ((0.463, 0.457, 0.461), (0.634, 0.628, 0.630), (0.526, 0.491, 0.486)),
            "adaptive": ((0.537, 0.542, 0.545), (0.690, 0.688, 0.675), (0.534, 0.529, 0.517))}
    for variant, scores in lodo.items():
        for part, (acc, uf1, uar) in zip(("smic", "casme2", "samm"), scores):
            rows.append(Published("dstnet", "megc2019_cde", "lodo", "megc3", _MEGC3, "unknown", "unknown",
                                  {"accuracy": acc, "uf1": uf1, "uar": uar}, _DSTNET_LODO, _DSTNET_BASIS, part=part,
                                  variant=variant))
    return rows


def _baselines() -> list[Published]:
    """STSTNet and Off-ApexNet as Adaptive DSTNet Table 7 lists them (MEGC 2019 composite, LOSO)."""
    rows = []
    cited = {
        "offapexnet": ("Adaptive DSTNet Table 7, citing Off-ApexNet [43]",
                       ((0.7196, 0.7096), (0.6817, 0.6695), (0.8764, 0.8681), (0.5409, 0.5392)),
                       "unknown", "selection: not stated in the Adaptive DSTNet paper", ""),
        "ststnet": ("Adaptive DSTNet Table 7, citing STSTNet [46]",
                    ((0.7353, 0.7605), (0.6801, 0.7013), (0.8382, 0.8686), (0.6588, 0.6810)),
                    "last", "selection: STSTNet's public code evaluates the last-epoch model "
                    "(shared/reference/reference-implementations.md section 7)",
                    "STSTNet's published UAR is a macro precision (reference-implementations.md section 7)"),
    }
    for network, (source, scores, selection, basis, note) in cited.items():
        for part, (uf1, uar) in zip((None, "smic", "casme2", "samm"), scores):
            rows.append(Published(network, "megc2019_cde", "loso", "megc3", _MEGC3, selection, "unknown",
                                  {"uf1": uf1, "uar": uar}, source, "LOSO (Adaptive DSTNet section 4.2); " + basis,
                                  part=part, note=note))
    return rows


_EDMDBN_BASIS = ("LOSO (section 4.2); selection: section 4.3 names only 60 epochs, the public code keeps the best "
                 "held-out-subject UF1 checkpoint (reference-implementations.md sections 1, 7); aggregation: section "
                 "4.2 \"metrics averaged across test sets\"")


def _edmdbn() -> list[Published]:
    def row(corpus, scheme, classes, metrics, source, part=None):
        return Published("edmdbn", corpus, "loso", scheme, classes, "test_selected", "per_fold_mean", metrics,
                         source, _EDMDBN_BASIS, part=part)

    rows = [row("smic/hs", "megc3", _MEGC3, {"accuracy": 0.8360, "uf1": 0.7948}, "EDMDBN Table 2"),
            row("casme2", "casme2_5", _CASME2_5, {"accuracy": 0.8826, "uf1": 0.8591},
                "EDMDBN Table 2 (classes: Table 1)"),
            row("samm", "samm_5", _SAMM_5, {"accuracy": 0.8158, "uf1": 0.7573}, "EDMDBN Table 2 (classes: Table 1)"),
            row("megc2019_cde", "megc3", _MEGC3, {"uf1": 0.8821, "uar": 0.8933, "accuracy": 0.9103},
                "EDMDBN Table 3 (UF1, UAR) and Table 6 (accuracy, \"Both\")")]
    for part, uf1, uar in (("smic", 0.7948, 0.8085), ("casme2", 0.9484, 0.9619), ("samm", 0.8336, 0.8661)):
        rows.append(row("megc2019_cde", "megc3", _MEGC3, {"uf1": uf1, "uar": uar}, "EDMDBN Table 3", part=part))
    rows += [row("mmew", "megc3", _MEGC3, {"accuracy": 0.9270, "uf1": 0.9216}, "EDMDBN Table 5 (three classes)"),
             row("mmew", None, "happiness, surprise, disgust, fear, others (Table 1)",
                 {"accuracy": 0.8171, "uf1": 0.7796}, "EDMDBN Table 5 (five classes)")]
    return rows


def _m3enet() -> list[Published]:
    """Table 2, M3ENet column; the five-corpus average row (accuracy 0.815, F1 0.736, AUC 0.953) matches
    no single corpus and is left out."""
    basis = ("LOSO (section 4.1.1); selection: section 4.1.4 gives only \"trained for 50 epochs\"; classes and "
             "aggregation: not stated")
    table = {"casme": (0.780, 0.746, 0.760, 0.856, 0.974), "casme2": (0.718, 0.715, 0.715, 0.803, 0.948),
             "casme_sq": (0.621, 0.650, 0.631, 0.731, 0.921), "samm": (0.757, 0.740, 0.747, 0.806, 0.944),
             "mmew": (0.822, 0.839, 0.829, 0.878, 0.976)}
    return [Published("m3enet", corpus, "loso", None, UNSTATED, "unknown", "unknown",
                      dict(zip(("precision", "recall", "f1", "accuracy", "auc"), scores)), "M3ENet Table 2", basis)
            for corpus, scores in table.items()]


def _madvnet() -> list[Published]:
    basis = ("protocol: section 4.2 speaks only of \"k ... folds of cross-validation (for one-way cross-validation, "
             "k is equal to the number of samples)\"; selection: section 4.3 gives only CosineAnnealingLR over 300 "
             "rounds; aggregation: Eq. 31-32 sum TP over all folds")
    table = (("smic/hs", "megc3", "positive, negative, surprise", 0.7287, 0.69, "Table 2"),
             ("casme2", "casme2_5", "happiness, disgust, \"depression\" (repression), surprise, others (section 4.1)",
              0.8994, 0.84, "Table 3"),
             ("casme_sq", None, "Happy, Sad, Neutral, Angry, Surprised, Despise, Frightened (Table 4)", 0.8332, 0.78,
              "Table 4"),
             ("samm", "samm_8", "Happy, Sad, Detest, Angry, Other, Despise, Frightened, Surprised (Table 5)", 0.8953,
              0.88, "Table 5"))
    return [Published("madvnet", corpus, "unknown", scheme, classes, "unknown", "pooled",
                      {"uar": uar, "f1_of_macro_pr": f1}, f"MADV-Net {table_name}", basis)
            for corpus, scheme, classes, uar, f1, table_name in table]


PUBLISHED: tuple[Published, ...] = tuple(_dstnet() + _baselines() + _edmdbn() + _m3enet() + _madvnet())

# Networks whose paper reports results we cannot read from papers/: why, and what the protocol is.
UNREADABLE = {
    "dfrnet": "DFR-Net Table 2 (UF1, UAR on the MEGC 2019 composite and SMIC, CASME II, SAMM; 3 classes, LOSO, "
              "section 4.3) is an image in papers/dfr-net.txt; selection: section 4.2 \"early stopping ... if the "
              "validation loss plateaued for 10 consecutive epochs\" on a validation set it does not describe",
}
