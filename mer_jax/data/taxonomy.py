"""Emotion names, label schemes and the action-unit (AU) vocabulary shared by every corpus.

Every corpus stores its emotion as a normalised lower-case name from `EMOTIONS`; a label scheme
turns names into class indices at load time, so one built corpus serves every protocol.
"""
from __future__ import annotations

# Normalised emotion names across SMIC, CASME, CASME II, CAS(ME)^2, SAMM, MMEW and the synthetic corpus.
EMOTIONS = (
    "happiness", "surprise", "disgust", "repression", "fear", "sadness", "anger", "contempt",
    "others", "positive", "negative",
    "tense",  # CASME (I) only (reference/corpora.md section 4); not part of MEGC 3-class (-1)
)

# MEGC2019 3-class protocol (challenge PDF; reference/corpora.md section 8): 0 negative, 1 positive,
# 2 surprise; `others` is not part of it.
MEGC3_CLASSES = ("negative", "positive", "surprise")
_MEGC3_OF_EMOTION = {
    "negative": "negative", "repression": "negative", "anger": "negative", "contempt": "negative",
    "disgust": "negative", "fear": "negative", "sadness": "negative",
    "positive": "positive", "happiness": "positive",
    "surprise": "surprise",
}

# Class lists of the usual single-corpus protocols (reference/corpora.md section 10). A sample whose
# emotion is not in the scheme is excluded by the loader, which reports how many it excluded.
LABEL_SCHEMES: dict[str, tuple[str, ...]] = {
    "megc3": MEGC3_CLASSES,
    "casme2_5": ("happiness", "surprise", "disgust", "repression", "others"),
    # CASME II's own 7 emotions (CASME2-coding xlsx), casme2_5's order first so indices agree.
    "casme2_7": ("happiness", "surprise", "disgust", "repression", "others", "fear", "sadness"),
    # CASME (I)'s own 8 emotions (meb's casme.xlsx; reference/corpora.md section 4).
    "casme_8": ("happiness", "surprise", "disgust", "repression", "tense", "contempt", "fear", "sadness"),
    "samm_5": ("happiness", "anger", "contempt", "surprise", "others"),
    "mmew_4": ("happiness", "surprise", "disgust", "others"),
    # SAMM's own 8 emotions (`Estimated Emotion`; reference/corpora.md section 2).
    "samm_8": ("happiness", "surprise", "anger", "contempt", "disgust", "fear", "sadness", "others"),
    # MMEW 6-class protocol of HTNet (all but others) and MMEW's own 7 emotions (corpora.md section 7).
    "mmew_6": ("happiness", "surprise", "disgust", "fear", "sadness", "anger"),
    "mmew_7": ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "others"),
    "emotion7": ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "contempt"),
    # CAS(ME)^2's own emotion categories (column 7 of CASFEcode_final; reference/corpora.md section 5).
    "casme_sq_4": ("negative", "positive", "surprise", "others"),
    # CAS(ME)^3 Part A's own 7 emotions (`emotion` column; reference/corpora.md section 6).
    "casme3_7": ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "others"),
}

# Facial action units the project tracks (FACS numbers); the AU multi-hot vector follows this order.
AU_VOCAB = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26)


def megc3_label(emotion: str) -> int:
    """MEGC2019 3-class index of a normalised emotion name, or -1 when the protocol drops it."""
    _check_emotion(emotion)
    name = _MEGC3_OF_EMOTION.get(emotion)
    return -1 if name is None else MEGC3_CLASSES.index(name)


def scheme_label(scheme: str, emotion: str) -> int:
    """Class index of `emotion` under `scheme`, or -1 when the scheme does not include it."""
    if scheme not in LABEL_SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r}; expected one of {sorted(LABEL_SCHEMES)}")
    if scheme == "megc3":
        return megc3_label(emotion)
    _check_emotion(emotion)
    classes = LABEL_SCHEMES[scheme]
    return classes.index(emotion) if emotion in classes else -1


def au_multi_hot(aus) -> list[int]:
    """Multi-hot vector over `AU_VOCAB` for an iterable of AU numbers; unknown AUs raise."""
    aus = {int(a) for a in aus}
    unknown = aus.difference(AU_VOCAB)
    if unknown:
        raise ValueError(f"AU(s) {sorted(unknown)} are not in the AU vocabulary {AU_VOCAB}")
    return [int(a in aus) for a in AU_VOCAB]


def _check_emotion(emotion: str) -> None:
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {EMOTIONS}")
