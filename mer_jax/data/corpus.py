"""Load a built corpus into host arrays: per-sample metadata in numpy, frames decoded on demand.

A corpus is read through its TFDS builder with the ArrayRecord data source (no TensorFlow needed).
Frames stay PNG-encoded until asked for, so a feature that needs three key frames of a clip never
decodes the other frames.

Two kinds of corpus share the schema (mer_jax.data.schema): frame corpora store each clip's frames;
flow corpora (e.g. `precomputed_flow`) store one precomputed flow image per sample instead
(`Corpus.kind == "flow"`, `Corpus.flow_image`), and their onset/apex/offset are not frame indices.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging

import numpy as np

from mer_jax.data import file_lock, taxonomy

log = logging.getLogger(__name__)

_METADATA = ("subject", "dataset", "clip", "emotion", "label_3class", "aus", "onset", "apex",
             "offset", "fps")


@dataclasses.dataclass
class Corpus:
    """N micro-expression clips: metadata arrays plus access to their encoded frames."""
    name: str                 # builder name with config, e.g. `synthetic_me/smoke`
    version: str              # builder version; part of every feature-cache key
    subject: np.ndarray       # str [N], globally unique `dataset/subject`
    dataset: np.ndarray       # str [N]
    clip: np.ndarray          # str [N], unique `dataset/subject/clip`
    emotion: np.ndarray       # str [N], names from taxonomy.EMOTIONS
    label_3class: np.ndarray  # int [N], MEGC2019 class or -1
    aus: np.ndarray           # uint8 [N, len(AU_VOCAB)]
    onset: np.ndarray         # int [N], indices into the clip's frames
    apex: np.ndarray
    offset: np.ndarray
    fps: np.ndarray           # float [N]
    encoded_frames: list | None   # frame corpora: per sample, list of PNG/JPEG bytes, one per frame
    encoded_flow: list | None = None   # flow corpora: per sample, the PNG bytes of its flow image
    encoded_depth: list | None = None  # corpora that store depth (synthetic): per sample, one uint16 PNG per frame
    metadata: dict = dataclasses.field(default_factory=dict)  # the builder's info.metadata (e.g. exclusions)

    def __len__(self) -> int:
        return len(self.clip)

    @property
    def kind(self) -> str:
        """`frames` (clips of frames) or `flow` (one precomputed flow image per sample)."""
        return "flow" if self.encoded_flow is not None else "frames"

    def frames(self, i: int, which=None) -> np.ndarray:
        """Decoded RGB frames uint8 [T, H, W, 3] of sample i; `which` picks frame indices."""
        import cv2

        if self.encoded_frames is None:
            raise ValueError(f"{self.name} is a flow corpus: it holds one precomputed flow image per sample "
                             "and no frames")
        encoded = self.encoded_frames[i]
        which = range(len(encoded)) if which is None else which
        out = []
        for t in which:
            image = cv2.imdecode(np.frombuffer(encoded[t], np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{self.name}: frame {t} of clip {self.clip[i]} cannot be decoded")
            out.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return np.stack(out)

    def depth(self, i: int, which=None) -> np.ndarray:
        """Stored depth maps uint16 [T, H, W, 1] of sample i (distance from the camera, in the corpus's
        unit; the synthetic corpus: millimetres); `which` picks frame indices."""
        import cv2

        if self.encoded_depth is None:
            raise ValueError(f"{self.name} stores no depth maps (only the synthetic corpus does); estimate them "
                             "with Depth Anything instead (features.depth='depth_anything')")
        encoded = self.encoded_depth[i]
        out = []
        for t in (range(len(encoded)) if which is None else which):
            image = cv2.imdecode(np.frombuffer(encoded[t], np.uint8), cv2.IMREAD_UNCHANGED)
            if image is None or image.dtype != np.uint16:
                raise ValueError(f"{self.name}: depth map {t} of clip {self.clip[i]} is not a uint16 PNG")
            out.append(image[..., None] if image.ndim == 2 else image)
        return np.stack(out)

    def flow_image(self, i: int) -> np.ndarray:
        """The flow image of sample i (flow corpora) as uint8 [H, W, 3], channels in the order
        `cv2.imread` gives them: B, G, R of the stored PNG (strain, v, u for an image whose R, G, B are
        u, v, strain), which is what STSTNet's and HTNet's code fed their networks."""
        import cv2

        if self.encoded_flow is None:
            raise ValueError(f"{self.name} is a frame corpus: it stores frames, not precomputed flow images")
        image = cv2.imdecode(np.frombuffer(self.encoded_flow[i], np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{self.name}: the flow image of clip {self.clip[i]} cannot be decoded")
        return image

    def labels(self, scheme: str) -> np.ndarray:
        """Class index per sample under a label scheme (taxonomy.LABEL_SCHEMES); -1 = not in it.

        `megc3` reads the stored `label_3class`, which a composite takes from its official ground
        truth; every other scheme maps the emotion name."""
        if scheme == "megc3":
            return self.label_3class.astype(np.int32)
        return np.array([taxonomy.scheme_label(scheme, e) for e in self.emotion], dtype=np.int32)

    def subset(self, keep: np.ndarray) -> "Corpus":
        """The samples where the boolean mask `keep` is true, in their original order."""
        keep = np.asarray(keep, bool)
        index = np.flatnonzero(keep)
        arrays = {f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        pick = lambda encoded: None if encoded is None else [encoded[i] for i in index]
        return dataclasses.replace(self, **arrays, encoded_frames=pick(self.encoded_frames),
                                   encoded_flow=pick(self.encoded_flow), encoded_depth=pick(self.encoded_depth))

    def identity(self) -> dict:
        """What the corpus content depends on, for cache keys: name, version and a fingerprint of
        the annotations and of the encoded onset, apex and offset frames of every clip (the flow
        image of every sample in a flow corpus), so a regenerated or re-annotated corpus never
        reuses stale features."""
        digest = hashlib.sha256()
        for i in range(len(self)):
            digest.update(f"{self.clip[i]}|{self.onset[i]}|{self.apex[i]}|{self.offset[i]}|{self.emotion[i]}".encode())
            if self.encoded_flow is not None:
                digest.update(b"flow|" + self.encoded_flow[i])
                continue
            for t in (self.onset[i], self.apex[i], self.offset[i]):
                digest.update(self.encoded_frames[i][t])
        return {"name": self.name, "version": self.version, "num_samples": len(self),
                "fingerprint": digest.hexdigest()}


def _keep_encoded():
    """A TFDS decoder that leaves a Sequence(Image) feature as its encoded bytes.

    `tfds.decode.SkipDecoding` does this for single images, but in tfds 4.9.10 it lacks the NumPy
    path for sequences (`decode_batch_example_np`), which data sources use.
    """
    import tensorflow_datasets as tfds

    class KeepEncoded(tfds.decode.SkipDecoding):
        def decode_batch_example_np(self, serialized_example):
            return serialized_example

    return KeepEncoded()


def _register_builders() -> None:
    """Importing the builder packages registers them with TFDS."""
    import tfds_builders  # noqa: F401  (registers every mer_jax builder)


def load_corpus(name: str, data_dir: str | None = None, manual_dir: str | None = None,
                builder_options: dict | None = None) -> Corpus:
    """Build the TFDS corpus `name` (e.g. `synthetic_me/smoke`, `casme2`, `casme2/raw_selected`) if
    needed, then load it.

    `builder_options` overrides fields of the builder config (e.g. {"skip_bad_samples": True,
    "image_size": 112} for a licensed corpus); the result is built as its own config, named after the
    base config and the overrides, next to the base one.
    Subjects come from one split per subject; samples are ordered by split name, then by position.
    A builder whose features hold `flow` instead of `frames` gives a flow corpus (`Corpus.kind`).
    """
    import tensorflow_datasets as tfds

    _register_builders()

    requested = name

    def make_builder():
        builder = tfds.builder(requested, data_dir=data_dir, file_format="array_record")
        if builder_options:
            config = _custom_config(builder.builder_config, builder_options, requested)
            builder = tfds.builder(builder.name, config=config, data_dir=data_dir, file_format="array_record")
        return builder

    builder = make_builder()
    if builder.builder_config is not None:  # `casme2` -> `casme2/cropped`: say which config was read
        name = f"{builder.name}/{builder.builder_config.name}"
    if not builder.is_prepared():
        with file_lock.exclusive(builder.data_dir, f"building {name}"):
            builder = make_builder()   # another process may have built it while this one waited
            if not builder.is_prepared():
                log.info("building %s into %s", name, builder.data_dir)
                builder.download_and_prepare(
                    file_format="array_record",
                    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    features = builder.info.features
    pixels = "frames" if "frames" in features else "flow" if "flow" in features else None
    if pixels is None:
        raise ValueError(f"{name}: the builder's features hold neither 'frames' nor 'flow'")
    skip = {key: _keep_encoded() for key in ("frames", "depth", "flow") if key in features}
    sources = builder.as_data_source(decoders=skip)
    columns = {key: [] for key in _METADATA}
    encoded, depth = [], [] if "depth" in features else None
    for split in sorted(sources):
        source = sources[split]
        for i in range(len(source)):
            example = source[i]
            for key in _METADATA:
                value = example[key]
                columns[key].append(value.decode() if isinstance(value, bytes) else value)
            encoded.append(list(example["frames"]) if pixels == "frames" else bytes(example["flow"]))
            if depth is not None:
                depth.append(list(example["depth"]))
    arrays = {key: np.asarray(values) for key, values in columns.items()}
    for key in ("onset", "apex", "offset", "label_3class"):
        arrays[key] = arrays[key].astype(np.int32)
    _validate(name, arrays, encoded if pixels == "frames" else None)
    metadata = dict(builder.info.metadata) if builder.info.metadata is not None else {}
    if pixels == "flow":
        return Corpus(name=name, version=str(builder.version), encoded_frames=None, encoded_flow=encoded,
                      metadata=metadata, **arrays)
    return Corpus(name=name, version=str(builder.version), encoded_frames=encoded, encoded_depth=depth,
                  metadata=metadata, **arrays)


def _validate(name: str, arrays: dict, encoded: list | None) -> None:
    """Clip ids must be unique. In a frame corpus (`encoded` = its frames) every key-frame index must
    point inside its clip, in order; name the clip otherwise. Flow corpora have no frames to check."""
    if len(set(arrays["clip"].tolist())) != len(arrays["clip"]):
        raise ValueError(f"{name}: clip ids are not unique")
    for i, frames in enumerate(encoded or ()):
        o, a, f = arrays["onset"][i], arrays["apex"][i], arrays["offset"][i]
        if not 0 <= o <= a <= f < len(frames):
            raise ValueError(f"{name}: clip {arrays['clip'][i]} has onset/apex/offset {o}/{a}/{f}, "
                             f"expected 0 <= onset <= apex <= offset < {len(frames)} frames")


def _custom_config(base, options: dict, name: str):
    """`base` with `options` replaced, named e.g. `cropped-image_size_112-skip_bad_samples_True`."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(base)} if dataclasses.is_dataclass(base) else set()
    unknown = sorted(set(options).difference(fields))
    if unknown:
        raise ValueError(f"{name}: builder option(s) {unknown} are not fields of its config "
                         f"{type(base).__name__}; expected some of {sorted(fields)}")
    if all(getattr(base, key) == value for key, value in options.items()):
        return base
    suffix = "-".join(f"{key}_{value}" for key, value in sorted(options.items()))
    return dataclasses.replace(base, name=f"{base.name}-{suffix}", **options)
