"""A MEGC2019 composite fixture: the three part corpora written with the official membership.

`manual_dir/casme2/`, `manual_dir/smic/` and `manual_dir/samm/` each hold a fixture archive of that
corpus (its own writer, exact layout) containing every clip the official ground truth lists
(`tfds_builders/megc2019_cde/combined_3class_gt.csv`: SMIC 164, CASME II 145, SAMM 133), with an
emotion of the ground-truth class, plus clips outside the composite (CASME II `others`, `fear`,
`sadness` and two extra `disgust` rows, as the real coding file has more negatives than the 88 the
composite keeps; SAMM `Other`), so that membership must come from the ground truth.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from mer_jax.data.synthetic.archives.casme2 import write_casme2
from mer_jax.data.synthetic.archives.samm import write_samm
from mer_jax.data.synthetic.archives.smic import write_smic

# The official ground truth shipped with the builder (found without importing TFDS).
GROUND_TRUTH = (Path(importlib.util.find_spec("tfds_builders").origin).parent / "megc2019_cde"
                / "combined_3class_gt.csv")

# Raw emotions of each corpus per ground-truth class (0 negative, 1 positive, 2 surprise), cycled.
_EMOTIONS = {
    "casme2": (("disgust", "repression"), ("happiness",), ("surprise",)),
    "samm": (("Anger", "Contempt", "Disgust", "Fear", "Sadness"), ("Happiness",), ("Surprise",)),
}
_CASME2_OUTSIDE = [("sub01", "EP90_01", "others"), ("sub02", "EP90_02", "fear"), ("sub03", "EP90_03", "sadness"),
                   ("sub10", "EP90_04", "others"), ("sub04", "EP90_05", "disgust"), ("sub05", "EP90_06", "disgust")]
_SAMM_OUTSIDE = [("006", "006_9_1", "Other"), ("008", "008_9_1", "Other")]


def ground_truth_rows(path=GROUND_TRUTH) -> list[tuple[str, str, str, int]]:
    """(database, subject, filename, class) of every row of the ground-truth file."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            database, subject, filename, label = line.strip().split(",")
            rows.append((database, subject, filename, int(label)))
    return rows


def write_megc2019_cde(root, *, quirks: bool = False, ground_truth=GROUND_TRUTH) -> dict:
    """Write the three parts under `root` (the builder's manual_dir) for the `cropped` config.

    quirks: write each part's known quirks too. SMIC's cropped HS archive then lacks `s18_sur_03`, a
    composite member, which the build lists as an exclusion (441 samples).
    Returns {"root", "rows" (ground-truth rows), "outside" (clip ids written outside the composite)}.
    """
    root = Path(root)
    rows = ground_truth_rows(ground_truth)
    samples = {"casme2": [], "samm": [], "smic": []}
    seen = {"casme2": [0, 0, 0], "samm": [0, 0, 0]}
    for database, subject, filename, label in rows:
        if database == "smic":
            samples["smic"].append({"subject": subject, "clip": filename})
            continue
        choices = _EMOTIONS[database][label]
        emotion = choices[seen[database][label] % len(choices)]
        seen[database][label] += 1
        samples[database].append({"subject": subject, "clip": filename, "emotion": emotion})
    samples["casme2"] += [{"subject": s, "clip": c, "emotion": e} for s, c, e in _CASME2_OUTSIDE]
    samples["samm"] += [{"subject": s, "clip": c, "emotion": e} for s, c, e in _SAMM_OUTSIDE]
    write_casme2(root / "casme2", samples=samples["casme2"], variant="cropped", quirks=quirks)
    write_smic(root / "smic", samples=samples["smic"], variant="hs", quirks=quirks, num_frames=4)
    write_samm(root / "samm", samples=samples["samm"], quirks=quirks, raw_faces=True, frames_per_clip=3)
    outside = [f"casme2/{s}/{c}" for s, c, _ in _CASME2_OUTSIDE] + [f"samm/{s}/{c}" for s, c, _ in _SAMM_OUTSIDE]
    return {"root": root, "rows": rows, "outside": sorted(outside)}
