"""Key-frame flow features: the JAX TV-L1 path against OpenCV's on the smoke corpus, the flow maps'
resize and strain (both forms), DFR-Net's apex and difference inputs, and the feature cache (one entry
per corpus, builder version, feature config and format version; a same-config call reuses it).

Every JAX TV-L1 call here uses the default config (48 x 48 frames, batch 64, default TV-L1 parameters),
the shape the M3ENet smoke runs of tests/test_experiment.py use, so the compile is shared."""
import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from configs import m3enet
from mer_jax import experiment
from mer_jax.data.corpus import load_corpus
from mer_jax.features import cache, keyframe_flow
from mer_jax.features.flow_tvl1 import TVL1Params
from mer_jax.features.host_frames import resize_square
from mer_jax.features.keyframe_flow import KeyframeFlowConfig, compute_keyframe_flow
from mer_jax.features.strain import optical_strain, strain

OPENCV = KeyframeFlowConfig(flow="opencv_tvl1")


@pytest.fixture(scope="module")
def smoke(data_dir):
    """The smoke corpus's clips under the MEGC 3-class scheme: the corpus the M3ENet smoke runs of
    tests/test_experiment.py train on, so the JAX features in the session cache serve both."""
    corpus = load_corpus("synthetic_me/smoke", data_dir=data_dir)
    return corpus.subset(corpus.labels("megc3") >= 0)


@pytest.fixture(scope="module")
def both_paths(smoke, tmp_path_factory):
    """Features of the smoke corpus from the JAX path (the session cache) and from OpenCV's (a private
    cache)."""
    return (compute_keyframe_flow(smoke, KeyframeFlowConfig(), progress=False),
            compute_keyframe_flow(smoke, OPENCV, cache_dir=tmp_path_factory.mktemp("opencv"), progress=False))


def test_jax_and_opencv_flow_agree_on_the_smoke_corpus(both_paths):
    ours, theirs = both_paths
    np.testing.assert_array_equal(ours["frames"], theirs["frames"])   # same host decoding
    uv, uv_cv = ours["flow"][..., :2], theirs["flow"][..., :2]
    moving = np.linalg.norm(uv_cv, axis=-1) > 0.3   # AU motion: 1.5-3 px at 64 px, about 1-2 px at 48
    assert moving.mean() > 0.01
    assert np.abs(uv - uv_cv).mean() < 0.05
    assert np.abs(uv - uv_cv)[moving].mean() < 0.25 * np.linalg.norm(uv_cv, axis=-1)[moving].mean()
    for features in both_paths:   # channel 2 is the M3ENet strain of channels 0, 1
        np.testing.assert_allclose(features["flow"][..., 2], optical_strain(features["flow"][..., :2]), atol=1e-6)
    # where it moves, the two flows point the same way (cosine of the moving pixels' vectors)
    cosine = (uv * uv_cv)[moving].sum() / np.sqrt((uv[moving] ** 2).sum() * (uv_cv[moving] ** 2).sum())
    assert cosine > 0.75, cosine


def test_flow_maps_rescale_vectors_and_compute_strain():
    """A linear flow u = a x, v = b y at 64 px resized to 48 px keeps its gradients (vectors scale by
    48/64, positions by 64/48), so inside the map u_x = a, v_y = b and the strain is sqrt(a^2 + b^2)."""
    a, b = 0.05, -0.02
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float32) + 0.5   # pixel centres, as jax.image.resize
    flow = jnp.asarray(np.stack([a * xs, b * ys], axis=-1)[None])
    maps = np.asarray(keyframe_flow._flow_maps(flow, 48, "m3enet"))[0]
    ys48, xs48 = (np.mgrid[0:48, 0:48].astype(np.float32) + 0.5) * 64 / 48
    inner = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(maps[..., 0][inner], (a * xs48 * 48 / 64)[inner], atol=2e-3)
    np.testing.assert_allclose(maps[..., 1][inner], (b * ys48 * 48 / 64)[inner], atol=2e-3)
    np.testing.assert_allclose(maps[..., 2][inner], np.hypot(a, b), atol=2e-3)


def test_flow_maps_strain_form_on_a_sheared_flow():
    """u = a x + c y, v = d x + b y (exact gradients everywhere): M3ENet's strain is
    sqrt(a^2 + b^2 + (c + d)^2 / 2), DFR-Net's (Eq. 7) sqrt(a^2 + b^2 + (c^2 + d^2) / 2)."""
    a, b, c, d = 0.02, -0.01, 0.05, -0.04
    ys, xs = np.mgrid[0:48, 0:48].astype(np.float32)
    flow = jnp.asarray(np.stack([a * xs + c * ys, d * xs + b * ys], axis=-1)[None])
    m3enet_strain, dfrnet_strain = (np.asarray(keyframe_flow._flow_maps(flow, 48, form))[0, ..., 2]
                                    for form in ("m3enet", "dfrnet"))
    np.testing.assert_allclose(m3enet_strain, np.sqrt(a ** 2 + b ** 2 + (c + d) ** 2 / 2), rtol=1e-4)
    np.testing.assert_allclose(dfrnet_strain, np.sqrt(a ** 2 + b ** 2 + (c ** 2 + d ** 2) / 2), rtol=1e-4)
    assert np.all(dfrnet_strain > 1.5 * m3enet_strain)


def _resized_keyframes(corpus, size):
    """(onset, apex) of every clip: the RGB frames as float in [0, 1], resized to size x size."""
    pairs = [[resize_square(f.astype(np.float32) / 255.0, size)
              for f in corpus.frames(i, (corpus.onset[i], corpus.apex[i]))] for i in range(len(corpus))]
    return tuple(np.stack(frames) for frames in zip(*pairs))


def test_dfrnet_inputs_strain_apex_and_difference(smoke, both_paths, tmp_path):
    """DFR-Net's inputs on three smoke clips, from both flow paths: the strain channel is Eq. 7's of
    the same u, v; apex and |apex - onset| are of the resized key frames, RGB or grey."""
    few = smoke.subset(np.arange(len(smoke)) < 3)
    onset, apex = _resized_keyframes(few, 48)
    rgb = compute_keyframe_flow(few, KeyframeFlowConfig(strain="dfrnet", apex_difference="rgb"),
                                cache_dir=tmp_path, progress=False)
    grey = compute_keyframe_flow(few, dataclasses.replace(OPENCV, strain="dfrnet", apex_difference="grey"),
                                 cache_dir=tmp_path, progress=False)
    default = both_paths[0]
    np.testing.assert_allclose(rgb["flow"][..., :2], default["flow"][:3, ..., :2], atol=1e-3)   # same u, v
    for features in (rgb, grey):
        np.testing.assert_allclose(features["flow"][..., 2], strain(features["flow"][..., :2], "dfrnet"), atol=1e-6)
        np.testing.assert_array_equal(features["frames"], default["frames"][:3])
        assert all(features[k].dtype == np.float32 for k in ("apex", "difference"))

    assert rgb["apex"].shape == rgb["difference"].shape == (3, 48, 48, 3)
    np.testing.assert_array_equal(rgb["apex"], apex)
    np.testing.assert_array_equal(rgb["difference"], np.abs(apex - onset))
    assert grey["apex"].shape == grey["difference"].shape == (3, 48, 48, 1)
    np.testing.assert_array_equal(grey["apex"][..., 0], default["frames"][:3, ..., 1])
    np.testing.assert_array_equal(grey["difference"][..., 0],
                                  np.abs(default["frames"][:3, ..., 1] - default["frames"][:3, ..., 0]))
    assert np.abs(rgb["difference"]).max() > 0.05   # the apex moved


@pytest.fixture
def counted(monkeypatch):
    """Counts of feature computations per flow implementation (the cache misses)."""
    calls = {"jax_tvl1": 0, "opencv_tvl1": 0}

    def counting(name, compute):
        def wrapper(*args):
            calls[name] += 1
            return compute(*args)
        return wrapper

    monkeypatch.setattr(keyframe_flow, "_jax_tvl1_maps", counting("jax_tvl1", keyframe_flow._jax_tvl1_maps))
    monkeypatch.setattr(keyframe_flow, "_opencv_tvl1_maps", counting("opencv_tvl1", keyframe_flow._opencv_tvl1_maps))
    return calls


def test_cache_recomputes_exactly_when_corpus_builder_version_or_config_change(smoke, counted, tmp_path,
                                                                               monkeypatch):
    few = smoke.subset(np.arange(len(smoke)) < 3)
    entries = lambda: sorted(p.name for p in tmp_path.glob("*.npz"))

    def features(corpus=few, config=KeyframeFlowConfig()):
        return compute_keyframe_flow(corpus, config, cache_dir=tmp_path, progress=False)

    first = features()
    again = features(config=KeyframeFlowConfig(batch_size=8))   # batch size only sets throughput
    assert counted == {"jax_tvl1": 1, "opencv_tvl1": 0} and len(entries()) == 1
    np.testing.assert_array_equal(again["flow"], first["flow"])

    # Each change below is a miss: one more computation and one more entry; the old entries stay.
    changes = [
        ("opencv_tvl1", dict(config=OPENCV)),                                        # flow implementation
        ("opencv_tvl1", dict(config=dataclasses.replace(OPENCV, tvl1=TVL1Params(lambda_=0.3)))),  # TV-L1 param
        ("jax_tvl1", dict(corpus=dataclasses.replace(few, version=few.version + ".1"))),  # builder version
    ]
    for n, (flow, change) in enumerate(changes, start=2):
        before = dict(counted)
        features(**change)
        assert counted[flow] == before[flow] + 1, change
        assert len(entries()) == n
    assert features(config=OPENCV)["flow"].shape == (3, 48, 48, 3) and counted["opencv_tvl1"] == 2   # reused

    # Content: clip 0's apex frame replaced by its onset frame. Same clips, new fingerprint, so a new
    # entry, in which that clip's onset -> apex flow is now zero.
    encoded = [list(frames) for frames in few.encoded_frames]
    encoded[0][few.apex[0]] = encoded[0][few.onset[0]]
    still = features(corpus=dataclasses.replace(few, encoded_frames=encoded))
    assert counted["jax_tvl1"] == 3 and len(entries()) == 5
    assert np.abs(still["flow"][0]).max() < 1e-3 < np.abs(first["flow"][0]).max()
    np.testing.assert_allclose(still["flow"][1:], first["flow"][1:], atol=1e-3)   # each pair on its own

    # A new cache format version orphans every entry.
    monkeypatch.setattr(cache, "FORMAT_VERSION", cache.FORMAT_VERSION + 1)
    features()
    assert counted["jax_tvl1"] == 4 and len(entries()) == 6


def test_cache_key_needs_a_full_corpus_identity(smoke):
    identity = smoke.identity()
    assert {"name", "version", "fingerprint"} <= set(identity)
    for field in ("version", "fingerprint"):
        partial = {k: v for k, v in identity.items() if k != field}
        with pytest.raises(ValueError, match=f"lacks \\['{field}'\\]"):
            cache.cache_key(partial, {})


def test_strain_and_apex_difference_are_cache_key_fields(smoke):
    identity = smoke.identity()
    key = lambda config: cache.cache_key(identity, {"kind": "keyframe_flow", **config.cache_fields()})
    configs = [KeyframeFlowConfig(), KeyframeFlowConfig(strain="dfrnet"),
               KeyframeFlowConfig(apex_difference="rgb"), KeyframeFlowConfig(apex_difference="grey")]
    assert len({key(config) for config in configs}) == len(configs)
    with pytest.raises(ValueError, match="features.strain must be one of .*'dfrnet'.*got 'frobenius'"):
        KeyframeFlowConfig(strain="frobenius")
    with pytest.raises(ValueError, match="features.apex_difference must be one of .*'rgb'.*got 'colour'"):
        KeyframeFlowConfig(apex_difference="colour")


def test_flow_is_a_config_field():
    config = m3enet.get_config()
    assert KeyframeFlowConfig.from_dict(experiment._feature_fields(config, "keyframe_flow")) == KeyframeFlowConfig()
    config.features.flow = "opencv_tvl1"
    config.features.tvl1.warps = 3
    chosen = KeyframeFlowConfig.from_dict(experiment._feature_fields(config, "keyframe_flow"))
    assert (chosen.flow, chosen.tvl1.warps) == ("opencv_tvl1", 3)
    config.features.strain, config.features.apex_difference = "dfrnet", "rgb"
    chosen = KeyframeFlowConfig.from_dict(experiment._feature_fields(config, "keyframe_flow"))
    assert (chosen.strain, chosen.apex_difference) == ("dfrnet", "rgb")
    with pytest.raises(ValueError, match="features.flow must be one of .*'farneback'"):
        KeyframeFlowConfig(flow="farneback")
