"""STSTNet and Off-ApexNet (flow baselines), the torch-free .pth reader/writer and the weight import.

The weight-parity tests run the PyTorch networks as NumPy code in PyTorch's layout (NCHW, (C, H, W)
flatten, eval-mode BatchNorm, -inf max-pool padding) on random PyTorch-layout weights, and compare
with our models after those weights went through a .pth file and `import_state_dict`.
"""
import io
import pickle
import zipfile

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

from mer_jax.convert import torch_checkpoint as tc
from mer_jax.convert.torch_weights import import_state_dict
from mer_jax.models import complexity, registry
from mer_jax.models.offapexnet import OffApexNet
from mer_jax.models.ststnet import STSTNet

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

STSTNET_PARAMS_K3 = 84 + 140 + 224 + 32 + 1203   # convs 3/5/8 x (27 + 1), BN 2 x 16, fc 400 x 3 + 3
OFFAPEXNET_PARAMS_K3 = 114 + 880 + 803_840 + 3075  # conv1, conv2, fc1 784 x 1024 + 1024, fc 1024 x 3 + 3


def flow(batch=2, size=28, channels=3, seed=0):
    return {"flow": jax.random.normal(jax.random.key(seed), (batch, size, size, channels))}


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def test_param_counts():
    count = lambda cls, k: complexity.count_params(nnx.eval_shape(lambda: cls(k, rngs=nnx.Rngs(0))))
    assert STSTNET_PARAMS_K3 == 1683
    assert count(STSTNet, 3) == 1683
    assert count(STSTNet, 5) == 480 + 401 * 5
    assert OFFAPEXNET_PARAMS_K3 == 807_909
    assert count(OffApexNet, 3) == 807_909
    assert count(OffApexNet, 5) == 804_834 + 1025 * 5
    # Adaptive DSTNet Table 9 lists STSTNet at 0.00167M parameters: within 1%.
    assert abs(1683 - 1670) / 1670 < 0.01


def test_flops():
    for cls, dense_macs in ((STSTNet, 30 * 30 * 16 * 27 + 400 * 3),
                            (OffApexNet, 28 * 28 * 6 * 18 + 14 * 14 * 16 * 54 + 784 * 1024 + 1024 * 3)):
        flops = complexity.flops_per_sample(cls(3, rngs=nnx.Rngs(0)), flow())
        print(f"{cls.__name__}: {flops / 1e6:.3f}M FLOPs (XLA, lowered), dense {2 * dense_macs / 1e6:.3f}M")
        assert 0.5 * 2 * dense_macs < flops < 2 * 2 * dense_macs


@pytest.mark.parametrize("name, cls", [("ststnet", STSTNet), ("offapexnet", OffApexNet)])
def test_registry_shapes_and_modes(name, cls):
    assert registry.model_inputs(name) == ("flow",)
    model = registry.create_model(name, 4, rngs=nnx.Rngs(0), input_size=28)
    assert isinstance(model, cls)
    x = flow(3)
    eval_logits = model(x, train=False)
    assert eval_logits.shape == (3, 4) and bool(jnp.isfinite(eval_logits).all())
    np.testing.assert_array_equal(eval_logits, model(x, train=False))
    with pytest.raises(ValueError, match="dropout_key"):
        model(x, train=True)
    a = model(x, train=True, dropout_key=jax.random.key(1))
    b = model(x, train=True, dropout_key=jax.random.key(2))
    assert not np.allclose(a, b) and not np.allclose(a, eval_logits)
    # Without dropout, training needs no key.
    plain = cls(4, rngs=nnx.Rngs(0), dropout_rate=0.0)
    assert plain(x, train=True).shape == (3, 4)
    # The functional trainer keeps only Param and BatchStat: the model holds nothing else.
    rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)[-1]
    assert not jax.tree.leaves(rest)


def test_input_size_and_bad_inputs():
    # STSTNet at 32: conv 34 -> max-pool 12 -> avg-pool 6; fc reads 16 x 6 x 6 instead of 16 x 5 x 5.
    small, large = STSTNet(3, rngs=nnx.Rngs(0)), STSTNet(3, rngs=nnx.Rngs(0), input_size=32)
    assert large.pooled_size == 6
    assert complexity.count_params(large) - complexity.count_params(small) == 16 * (36 - 25) * 3
    assert large(flow(size=32), train=False).shape == (2, 3)
    # Off-ApexNet at 32: 8 x 8 x 16 = 1024 inputs to fc1.
    assert OffApexNet(3, rngs=nnx.Rngs(0), input_size=32).fc1.kernel.shape == (1024, 1024)
    with pytest.raises(ValueError, match=r"inputs\['flow'\] must be \[B, 28, 28, 3\]"):
        small(flow(channels=2), train=False)
    with pytest.raises(ValueError, match=r"C>=2"):
        OffApexNet(3, rngs=nnx.Rngs(0))(flow(channels=1), train=False)
    with pytest.raises(ValueError, match="input_size"):
        STSTNet(3, rngs=nnx.Rngs(0), input_size=1)
    with pytest.raises(ValueError, match="input_size"):
        OffApexNet(3, rngs=nnx.Rngs(0), input_size=3)


# ---------------------------------------------------------------------------------------------
# NumPy reference forward passes in PyTorch layout
# ---------------------------------------------------------------------------------------------

def conv2d(x, w, b, pad):
    """PyTorch Conv2d, NCHW / OIHW, stride 1, zero padding."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = sum(np.einsum("bchw,oc->bohw", x[:, :, i:i + ho, j:j + wo], w[:, :, i, j])
              for i in range(kh) for j in range(kw))
    return out + b[None, :, None, None]


def pool2d(x, k, s, pad, reduce, fill=-np.inf):
    """PyTorch MaxPool2d (pads with -inf) / AvgPool2d (used here without padding) on NCHW."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
    windows = np.stack([x[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s]
                        for i in range(k) for j in range(k)])
    return reduce(windows, axis=0)


def bn_eval(x, sd, name):
    shape = (1, -1, 1, 1)
    return ((x - sd[f"{name}.running_mean"].reshape(shape)) / np.sqrt(sd[f"{name}.running_var"].reshape(shape) + 1e-5)
            * sd[f"{name}.weight"].reshape(shape) + sd[f"{name}.bias"].reshape(shape))


def ststnet_reference(x_nchw, sd, max_pool_fill=-np.inf):
    relu = lambda z: np.maximum(z, 0)
    branches = [pool2d(bn_eval(relu(conv2d(x_nchw, sd[f"conv{i}.weight"], sd[f"conv{i}.bias"], 2)), sd, f"bn{i}"),
                       3, 3, 1, np.max, max_pool_fill) for i in (1, 2, 3)]
    y = pool2d(np.concatenate(branches, 1), 2, 2, 0, np.mean)
    return y.reshape(len(y), -1) @ sd["fc.weight"].T + sd["fc.bias"]


def offapexnet_reference(x_nchw, sd):
    relu = lambda z: np.maximum(z, 0)
    y = pool2d(relu(conv2d(x_nchw, sd["conv1.weight"], sd["conv1.bias"], 1)), 2, 2, 0, np.max)
    y = pool2d(relu(conv2d(y, sd["conv2.weight"], sd["conv2.bias"], 1)), 2, 2, 0, np.max)
    y = relu(y.reshape(len(y), -1) @ sd["fc1.weight"].T + sd["fc1.bias"])
    return y @ sd["fc.weight"].T + sd["fc.bias"]


def ststnet_state_dict(num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    sd = {}
    for i, c in zip((1, 2, 3), (3, 5, 8)):
        sd[f"conv{i}.weight"] = rng.normal(0, 0.3, (c, 3, 3, 3)).astype(np.float32)
        sd[f"conv{i}.bias"] = rng.normal(0, 0.3, c).astype(np.float32)
        sd[f"bn{i}.weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        sd[f"bn{i}.bias"] = rng.normal(0, 0.5, c).astype(np.float32)
        sd[f"bn{i}.running_mean"] = rng.normal(0, 0.5, c).astype(np.float32)
        sd[f"bn{i}.running_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
        sd[f"bn{i}.num_batches_tracked"] = np.array(1600, np.int64)
    sd["fc.weight"] = rng.normal(0, 0.1, (num_classes, 400)).astype(np.float32)
    sd["fc.bias"] = rng.normal(0, 0.1, num_classes).astype(np.float32)
    return sd


def offapexnet_state_dict(num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"conv1.weight": (6, 2, 3, 3), "conv1.bias": (6,), "conv2.weight": (16, 6, 3, 3), "conv2.bias": (16,),
              "fc1.weight": (1024, 784), "fc1.bias": (1024,), "fc.weight": (num_classes, 1024), "fc.bias": (num_classes,)}
    return {k: rng.normal(0, 0.05 if k.startswith("fc") else 0.3, s).astype(np.float32) for k, s in shapes.items()}


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_ststnet_weight_parity(tmp_path, fmt):
    sd = ststnet_state_dict()
    path = tmp_path / f"sub01_{fmt}.pth"
    tc.write_state_dict(path, {"module." + k: v for k, v in sd.items()}, format=fmt)  # DataParallel prefix
    loaded = tc.load_state_dict(path)
    model = STSTNet(3, rngs=nnx.Rngs(0))
    import_state_dict("ststnet", model, loaded)
    x = np.asarray(flow(4)["flow"]) * 2
    ours = np.asarray(model({"flow": jnp.asarray(x)}, train=False))
    ref = ststnet_reference(x.transpose(0, 3, 1, 2).astype(np.float64), {k: v.astype(np.float64) for k, v in sd.items()})
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    # The test can tell a wrong flatten order and zero max-pool padding from the right ones.
    naive = dict(sd, **{"fc.weight": sd["fc.weight"].reshape(3, 5, 5, 16).transpose(0, 3, 1, 2).reshape(3, 400)})
    assert not np.allclose(ststnet_reference(x.transpose(0, 3, 1, 2), naive), ref, atol=1e-3)
    assert not np.allclose(ststnet_reference(x.transpose(0, 3, 1, 2), sd, max_pool_fill=0.0), ref, atol=1e-3)
    # Official weights saw cv2.imread (BGR) inputs: reverse_input_channels reads ours in (u, v, strain).
    flipped = STSTNet(3, rngs=nnx.Rngs(0))
    import_state_dict("ststnet", flipped, loaded, reverse_input_channels=True)
    np.testing.assert_allclose(np.asarray(flipped({"flow": jnp.asarray(x[..., ::-1])}, train=False)), ours,
                               rtol=1e-5, atol=1e-5)


def test_offapexnet_weight_parity(tmp_path):
    sd = offapexnet_state_dict(num_classes=5)
    path = tmp_path / "meb.pth"
    tc.write_checkpoint(path, {"state_dict": sd, "epoch": 40}, format="zip")  # a wrapped checkpoint
    model = OffApexNet(5, rngs=nnx.Rngs(0))
    import_state_dict("offapexnet", model, tc.load_state_dict(path))
    x = np.asarray(flow(3)["flow"])  # 3 channels: the strain channel must be ignored
    ours = np.asarray(model({"flow": jnp.asarray(x)}, train=False))
    ref = offapexnet_reference(x[..., :2].transpose(0, 3, 1, 2).astype(np.float64),
                               {k: v.astype(np.float64) for k, v in sd.items()})
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_import_errors_name_keys_and_shapes():
    model = STSTNet(3, rngs=nnx.Rngs(0))
    before = [np.array(v) for v in jax.tree.leaves(nnx.state(model))]
    sd = ststnet_state_dict()
    with pytest.raises(ValueError, match=r"missing keys \['bn2.running_var'\]"):
        import_state_dict("ststnet", model, {k: v for k, v in sd.items() if k != "bn2.running_var"})
    with pytest.raises(ValueError, match=r"unexpected keys \['fc2.weight'\]"):
        import_state_dict("ststnet", model, dict(sd, **{"fc2.weight": sd["fc.weight"]}))
    with pytest.raises(ValueError, match=r"conv2.weight: expected shape \(5, 3, 3, 3\), found \(5, 3, 5, 5\)"):
        import_state_dict("ststnet", model, dict(sd, **{"conv2.weight": np.zeros((5, 3, 5, 5), np.float32)}))
    with pytest.raises(ValueError, match=r"classifier has 5 classes, the model was built with num_classes=3"):
        import_state_dict("ststnet", model, ststnet_state_dict(num_classes=5))
    with pytest.raises(ValueError, match=r"fc.weight: expected shape \(3, 576\), found \(3, 400\)"):
        import_state_dict("ststnet", STSTNet(3, rngs=nnx.Rngs(0), input_size=32), sd)
    with pytest.raises(ValueError, match="floating-point"):
        import_state_dict("ststnet", model, dict(sd, **{"fc.bias": np.zeros(3, np.int64)}))
    with pytest.raises(TypeError, match="needs a OffApexNet"):
        import_state_dict("offapexnet", model, sd)
    with pytest.raises(ValueError, match="supported: offapexnet, ststnet"):
        import_state_dict("m3enet", model, sd)
    assert all(np.array_equal(a, b) for a, b in zip(before, jax.tree.leaves(nnx.state(model))))
    # num_batches_tracked is optional (torch < 0.4.1 did not write it).
    import_state_dict("ststnet", model, {k: v for k, v in sd.items() if "num_batches" not in k})


# ---------------------------------------------------------------------------------------------
# .pth files
# ---------------------------------------------------------------------------------------------

def tricky_tensors():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 6)).astype(np.float32)
    tensors = {
        "transposed": base.T,                        # non-contiguous view: strides (1, 6)
        "row_tail": base[1, 2:],                     # same storage, offset 8
        "every_other": np.arange(7, dtype=np.int64)[::2],
        "scalar": np.array(1600, np.int64),          # like num_batches_tracked
        "half": rng.standard_normal((2, 3)).astype(np.float16),
        "bfloat16": rng.standard_normal(5).astype(ml_dtypes.bfloat16),
        "double_fortran": np.asfortranarray(rng.standard_normal((2, 3))),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(4, dtype=np.uint8), "int32": np.arange(3, dtype=np.int32),
        "empty": np.zeros((0, 3), np.float32),
        "big_endian": np.arange(3, dtype=">f4"),
        "base": base,
    }
    tensors["tied"] = tensors["base"]
    return tensors


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_checkpoint_round_trip(tmp_path, fmt):
    tensors = tricky_tensors()
    path = tmp_path / "t.pth"
    tc.write_state_dict(path, tensors, format=fmt)
    loaded = tc.load_state_dict(path)
    assert list(loaded) == list(tensors)
    for key, value in tensors.items():
        assert loaded[key].dtype == value.dtype.newbyteorder("=") and loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key], value)
    # Views of `base` share its storage, as in torch: base, transposed, row_tail and tied -> one storage.
    _, storages = tc._pickle(tensors, legacy=fmt == "legacy")
    assert len(storages) == len(tensors) - 3
    with open(path, "rb") as f:
        head = f.read(4)
    if fmt == "legacy":
        assert pickle.load(open(path, "rb")) == tc.MAGIC_NUMBER
    else:
        assert head == b"PK\x03\x04"
        with zipfile.ZipFile(path) as archive:
            assert archive.namelist()[0] == "archive/data.pkl" and archive.read("archive/version") == b"3\n"
            for info in archive.infolist():  # record data 64-byte aligned, as PyTorchStreamWriter writes it
                assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0
                assert info.compress_type == zipfile.ZIP_STORED


def test_legacy_storage_views_and_wrappers(tmp_path):
    """A legacy file with view_metadata (old torch wrote storage views this way) and a 'model' wrapper."""
    root = tc._StorageOut("7", np.dtype(np.float32), np.arange(10, dtype=np.float32).tobytes())

    class ViewPickler(tc._TorchPickler):
        def persistent_id(self, obj):
            if isinstance(obj, _ViewOut):
                return ("storage", tc._global("torch", "FloatStorage"), "7", "cuda:0", 10, ("8", 4, 3))
            return super().persistent_id(obj)

    class _ViewOut:
        pass

    view = tc._TensorOut(_ViewOut(), 1, (2,), (1,))
    path = tmp_path / "views.pth"
    with open(path, "wb") as f:
        buf = io.BytesIO()
        ViewPickler(buf, legacy=True).dump({"model": {"w": view}, "optimizer": {}})
        tc._write_legacy(f, buf.getvalue(), [root])
    np.testing.assert_array_equal(tc.load_state_dict(path)["w"], [5.0, 6.0])


def evil_pickle():
    return b"\x80\x02cos\nsystem\nq\x00X\x0c\x00\x00\x00echo pwnd >&2q\x01\x85q\x02Rq\x03."


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_restricted_unpickler_refuses_other_globals(tmp_path, fmt):
    path = tmp_path / "evil.pth"
    if fmt == "legacy":
        with open(path, "wb") as f:
            for header in (tc.MAGIC_NUMBER, tc.PROTOCOL_VERSION, {"little_endian": True}):
                pickle.dump(header, f, protocol=2)
            f.write(evil_pickle())
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", evil_pickle())
    with pytest.raises(tc.TorchCheckpointError, match=rf"{path}: refusing to load global os\.system"):
        tc.load_state_dict(path)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        tc.load_state_dict(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(tc.TorchCheckpointError, match="garbage.pth") as err:
        tc.load_state_dict(garbage)
    if not HAVE_TORCH:
        assert "pip install torch" in str(err.value)
    truncated = tmp_path / "truncated.pth"
    tc.write_state_dict(truncated, {"w": np.ones(100, np.float32)})
    truncated.write_bytes(truncated.read_bytes()[:-10])
    with pytest.raises(tc.TorchCheckpointError, match="truncated.pth"):
        tc.load_state_dict(truncated)
    not_sd = tmp_path / "list.pth"
    tc.write_checkpoint(not_sd, [np.ones(2, np.float32)])
    with pytest.raises(tc.TorchCheckpointError, match="holds a list, not a state_dict"):
        tc.load_state_dict(not_sd)
    with pytest.raises(tc.TorchCheckpointError, match="bad entries"):
        tc.write_state_dict(tmp_path / "x.pth", {"w": [1.0]})
    with pytest.raises(ValueError, match="format"):
        tc.write_state_dict(tmp_path / "x.pth", {"w": np.ones(1)}, format="npz")


# ---------------------------------------------------------------------------------------------
# Cross-check with torch itself (only where torch is installed)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_torch_reads_ours_and_we_read_torch(tmp_path, fmt):
    torch = pytest.importorskip("torch")
    tensors = {k: v for k, v in tricky_tensors().items()}
    ours = tmp_path / "ours.pth"
    tc.write_state_dict(ours, tensors, format=fmt)
    read = torch.load(ours, map_location="cpu", weights_only=True)
    for key, value in tensors.items():
        t = read[key]
        got = t.view(torch.int16).numpy().view(ml_dtypes.bfloat16) if t.dtype == torch.bfloat16 else t.numpy()
        np.testing.assert_array_equal(got, value)
    assert read["tied"].data_ptr() == read["base"].data_ptr()

    base = torch.randn(4, 6)
    theirs = {"w": base.t(), "tail": base[1, 2:], "scalar": torch.tensor(3), "half": torch.randn(3).half(),
              "bf16": torch.randn(2).bfloat16(), "mask": torch.tensor([True, False])}
    path = tmp_path / "theirs.pth"
    torch.save(theirs, path, _use_new_zipfile_serialization=fmt == "zip")
    loaded = tc.load_state_dict(path)
    for key, t in theirs.items():
        want = t.view(torch.int16).numpy().view(ml_dtypes.bfloat16) if t.dtype == torch.bfloat16 else t.numpy()
        assert loaded[key].dtype == want.dtype and loaded[key].shape == want.shape
        np.testing.assert_array_equal(loaded[key], want)


def _torch_networks(torch):
    """The two PyTorch networks as christy1206/STSTNet main.py and meb define them (our own code)."""
    nn, F = torch.nn, torch.nn.functional

    class TorchSTSTNet(nn.Module):
        def __init__(self, k):
            super().__init__()
            for i, c in zip((1, 2, 3), (3, 5, 8)):
                setattr(self, f"conv{i}", nn.Conv2d(3, c, 3, padding=2))
                setattr(self, f"bn{i}", nn.BatchNorm2d(c))
            self.fc = nn.Linear(400, k)

        def forward(self, x):
            ys = [F.max_pool2d(getattr(self, f"bn{i}")(F.relu(getattr(self, f"conv{i}")(x))), 3, 3, 1)
                  for i in (1, 2, 3)]
            return self.fc(F.avg_pool2d(torch.cat(ys, 1), 2, 2).flatten(1))

    class TorchOffApexNet(nn.Module):
        def __init__(self, k):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(2, 6, 3, padding=1), nn.Conv2d(6, 16, 3, padding=1)
            self.fc1, self.fc = nn.Linear(784, 1024), nn.Linear(1024, k)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.fc(F.relu(self.fc1(x.flatten(1))))

    return {"ststnet": TorchSTSTNet, "offapexnet": TorchOffApexNet}


@pytest.mark.parametrize("name, fmt", [("ststnet", "legacy"), ("offapexnet", "zip")])
def test_parity_with_torch_modules(tmp_path, name, fmt):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = _torch_networks(torch)[name](3).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.5), module.running_var.uniform_(0.5, 2), module.bias.normal_(0, 0.5)
    path = tmp_path / f"{name}.pth"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=fmt == "zip")
    model = registry.create_model(name, 3, rngs=nnx.Rngs(0), input_size=28)
    import_state_dict(name, model, tc.load_state_dict(path))
    x = np.asarray(flow(4)["flow"])
    with torch.no_grad():
        want = net(torch.from_numpy(x[..., :3 if name == "ststnet" else 2].transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(np.asarray(model({"flow": jnp.asarray(x)}, train=False)), want, rtol=1e-5, atol=1e-5)
