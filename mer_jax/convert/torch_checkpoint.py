"""Read and write PyTorch `.pth` state_dicts as NumPy arrays, without importing torch.

`torch.save(obj, path)` has written two formats (torch/serialization.py, `_legacy_save` and `_save`):

Legacy (torch < 1.6, or `_use_new_zipfile_serialization=False`): one stream of
  pickle(MAGIC_NUMBER = 0x1950a86a20f9469cfc6c), pickle(PROTOCOL_VERSION = 1001), pickle(sys_info),
  pickle(obj), whose storages are persistent ids
      ('storage', storage_type, root_key, location, numel, view_metadata)
  with view_metadata None or (view_key, offset, view_numel), then pickle(sorted storage keys), then
  for each key in that order: its element count as int64 and its raw little-endian bytes.
Zip (torch >= 1.6): a stored (uncompressed) zip archive with `<archive>/data.pkl` (pickle(obj) with
  persistent ids ('storage', storage_type, key, location, numel)), `<archive>/data/<key>` (raw bytes
  of each storage), `<archive>/byteorder` and `<archive>/version`.

In both, a tensor is pickled as `torch._utils._rebuild_tensor_v2(storage, storage_offset, size,
stride, requires_grad, backward_hooks[, metadata])`, where offset and strides count elements, and
storage types are globals such as `torch.FloatStorage`. The pickles here are read with an
unpickler that resolves only those names and `collections.OrderedDict`: a file that names anything
else (os.system, a model class) is refused with an error naming the file and the global, so loading
an untrusted file runs no code. Files this reader cannot parse go to `torch.load(...,
weights_only=True)` when torch is installed.

The released STSTNet weights (christy1206/STSTNet `STSTNet_Weights/<subject>.pth`) were written by
`torch.save(model.state_dict(), path)` under torch 1.5.0 (the repository's requirements.txt), i.e.
in the legacy format; both formats are read.

`write_state_dict` writes either format byte-for-byte as torch lays it out (pickle protocol 2,
64-byte-aligned zip records), so tests and fixture archives can make `.pth` files without torch.
NumPy views that share memory are written as views of one storage, with their offsets and strides,
as torch writes views of one tensor.
"""
from __future__ import annotations

import collections
import functools
import io
import logging
import os
import pickle
import struct
import sys
import zipfile
from typing import Any, Mapping

import ml_dtypes
import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch/serialization.py
PROTOCOL_VERSION = 1001                # torch/serialization.py (legacy format)
PICKLE_PROTOCOL = 2                    # torch.save's DEFAULT_PROTOCOL
ZIP_ALIGNMENT = 64                     # PyTorchStreamWriter aligns record data to 64 bytes
ZIP_FILE_FORMAT_VERSION = b"3\n"       # caffe2/serialize: kProducedFileFormatVersion

# Typed storage classes (torch.<Name>) -> element dtype.
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype(np.float64), "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16), "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64), "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16), "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8), "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64), "ComplexDoubleStorage": np.dtype(np.complex128),
    "UntypedStorage": np.dtype(np.uint8),  # bytes; `_rebuild_tensor_v3` names the element dtype
}
_STORAGE_NAMES = {dtype: name for name, dtype in STORAGE_DTYPES.items() if name != "UntypedStorage"}
# torch.<dtype> globals (pickled by `_rebuild_tensor_v3`) -> dtype.
TORCH_DTYPES: dict[str, np.dtype] = {
    "float64": np.dtype(np.float64), "double": np.dtype(np.float64), "float32": np.dtype(np.float32),
    "float": np.dtype(np.float32), "float16": np.dtype(np.float16), "half": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16), "int64": np.dtype(np.int64), "long": np.dtype(np.int64),
    "int32": np.dtype(np.int32), "int": np.dtype(np.int32), "int16": np.dtype(np.int16),
    "short": np.dtype(np.int16), "int8": np.dtype(np.int8), "uint8": np.dtype(np.uint8),
    "uint16": np.dtype(np.uint16), "uint32": np.dtype(np.uint32), "uint64": np.dtype(np.uint64),
    "bool": np.dtype(np.bool_), "complex64": np.dtype(np.complex64), "complex128": np.dtype(np.complex128),
    "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn), "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
}

log = logging.getLogger(__name__)


class TorchCheckpointError(ValueError):
    """A `.pth` file that cannot be read or written; the message names the file."""


def _check_little_endian_host() -> None:
    if sys.byteorder != "little":
        raise TorchCheckpointError("mer_jax.convert.torch_checkpoint supports little-endian hosts only")


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

class _StorageType:
    """What the restricted unpickler returns for a `torch.<Name>Storage` global."""

    def __init__(self, name: str):
        self.name, self.dtype = name, STORAGE_DTYPES[name]

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    """A storage named by a persistent id; its bytes arrive later (legacy) or from the zip record."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _StorageView:
    """A legacy storage view: `numel` elements of `root` from element `offset`."""

    def __init__(self, root: _Storage, offset: int, numel: int):
        self.root, self.offset, self.numel, self.dtype = root, offset, numel, root.dtype


class _Tensor:
    """What `_rebuild_tensor*` returns while unpickling; turned into an ndarray once bytes are read."""

    def __init__(self, storage, offset, size, stride, dtype=None):
        if not isinstance(storage, (_Storage, _StorageView)):
            raise TypeError(f"tensor storage is a {type(storage).__name__}, not a storage")
        self.storage, self.offset = storage, _int(offset, "storage_offset")
        self.size = tuple(_int(s, "size") for s in size)
        self.stride = tuple(_int(s, "stride") for s in stride)
        if len(self.size) != len(self.stride):
            raise ValueError(f"tensor size {self.size} and stride {self.stride} differ in length")
        self.dtype = storage.dtype if dtype is None else dtype


def _int(x, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError(f"tensor {what} must be a non-negative int, got {x!r}")
    return x


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
    if not isinstance(dtype, np.dtype):
        raise TypeError(f"_rebuild_tensor_v3 dtype is {dtype!r}, not a torch dtype")
    return _Tensor(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


_REBUILDERS = {"_rebuild_tensor": _rebuild_tensor, "_rebuild_tensor_v2": _rebuild_tensor_v2,
               "_rebuild_tensor_v3": _rebuild_tensor_v3, "_rebuild_parameter": _rebuild_parameter,
               "_rebuild_parameter_with_state": _rebuild_parameter}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a state_dict needs; collects the storages its persistent ids name."""

    def __init__(self, file, path: str):
        super().__init__(file)
        self.path = path
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in _REBUILDERS:
            return _REBUILDERS[name]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name in TORCH_DTYPES:
            return TORCH_DTYPES[name]
        if (module, name) == ("torch", "Size"):
            return tuple
        raise TorchCheckpointError(
            f"{self.path}: refusing to load global {module}.{name}: a state_dict file names only tensors, "
            "storages and collections.OrderedDict (loading anything else could run arbitrary code)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or _text(pid[0]) != "storage" or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"persistent id names {storage_type!r}, not a torch storage type")
        key = _text(key)
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = _Storage(key, storage_type.dtype, _int(numel, "storage numel"))
        elif root.dtype != storage_type.dtype or root.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is named twice with different types or sizes")
        if view is None:
            return root
        _view_key, offset, view_numel = view
        if _int(offset, "view offset") + _int(view_numel, "view numel") > root.numel:
            raise pickle.UnpicklingError(f"storage view {view!r} runs past storage {key} ({root.numel} elements)")
        return _StorageView(root, offset, view_numel)


def _text(x) -> str:
    return x.decode("ascii") if isinstance(x, bytes) else x


def _unpickle(file, path: str) -> Any:
    return _RestrictedUnpickler(file, path).load()


def _read_legacy(path: str) -> tuple[Any, dict[str, bytes]]:
    with open(path, "rb") as f:
        magic = _unpickle(f, path)
        if magic != MAGIC_NUMBER:
            raise TorchCheckpointError(f"{path}: not a PyTorch file (no legacy magic number, not a zip archive)")
        version = _unpickle(f, path)
        if version != PROTOCOL_VERSION:
            raise TorchCheckpointError(f"{path}: legacy protocol version {version!r}, expected {PROTOCOL_VERSION}")
        sys_info = _unpickle(f, path)
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise TorchCheckpointError(f"{path}: written on a big-endian machine; not supported")
        unpickler = _RestrictedUnpickler(f, path)
        obj = unpickler.load()
        keys = [_text(k) for k in _unpickle(f, path)]
        data = {}
        for key in keys:
            storage = unpickler.storages.get(key)
            if storage is None:
                raise TorchCheckpointError(f"{path}: storage {key} is listed but no tensor uses it")
            header = f.read(8)
            if len(header) != 8:
                raise TorchCheckpointError(f"{path}: truncated before the data of storage {key}")
            (numel,) = struct.unpack("<q", header)
            if numel != storage.numel:
                raise TorchCheckpointError(f"{path}: storage {key} holds {numel} elements, its tensors expect "
                                           f"{storage.numel}")
            nbytes = numel * storage.dtype.itemsize
            data[key] = f.read(nbytes)
            if len(data[key]) != nbytes:
                raise TorchCheckpointError(f"{path}: truncated in the data of storage {key} "
                                           f"({len(data[key])} of {nbytes} bytes)")
    missing = sorted(set(unpickler.storages) - set(data))
    if missing:
        raise TorchCheckpointError(f"{path}: no data for storages {missing}")
    return obj, data


def _read_zip(path: str) -> tuple[Any, dict[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise TorchCheckpointError(f"{path}: a zip archive, but not torch.save's (expected one "
                                       f"<archive>/data.pkl, found {pickles or 'none'})")
        prefix = pickles[0][:-len("data.pkl")]
        if prefix + "byteorder" in names and archive.read(prefix + "byteorder").strip() != b"little":
            raise TorchCheckpointError(f"{path}: written with big-endian byte order; not supported")
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), path)
        obj = unpickler.load()
        data = {}
        for key, storage in unpickler.storages.items():
            record = f"{prefix}data/{key}"
            if record not in names:
                raise TorchCheckpointError(f"{path}: record {record} (storage {key}) is missing")
            data[key] = archive.read(record)
            if len(data[key]) < storage.numel * storage.dtype.itemsize:
                raise TorchCheckpointError(f"{path}: record {record} has {len(data[key])} bytes, its storage "
                                           f"needs {storage.numel * storage.dtype.itemsize}")
    return obj, data


def _materialize(tensor: _Tensor, data: dict[str, bytes]) -> np.ndarray:
    storage = tensor.storage
    root = storage.root if isinstance(storage, _StorageView) else storage
    start = (storage.offset if isinstance(storage, _StorageView) else 0) * root.dtype.itemsize
    nbytes = storage.numel * root.dtype.itemsize
    dtype = tensor.dtype
    if any(s == 0 for s in tensor.size):
        return np.zeros(tensor.size, dtype)
    flat = np.frombuffer(data[root.key], np.uint8, count=nbytes, offset=start)
    flat = flat[:nbytes - nbytes % dtype.itemsize].view(dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride))
    if last >= flat.size:
        raise ValueError(f"tensor (offset {tensor.offset}, size {tensor.size}, stride {tensor.stride}) "
                         f"runs past its storage ({flat.size} elements)")
    strides = tuple(s * dtype.itemsize for s in tensor.stride)
    return np.lib.stride_tricks.as_strided(flat[tensor.offset:], tensor.size, strides).copy()


def _arrays(obj, data: dict[str, bytes]):
    """`obj` with every tensor replaced by an ndarray (containers rebuilt, other leaves kept)."""
    if isinstance(obj, _Tensor):
        return _materialize(obj, data)
    if isinstance(obj, (_Storage, _StorageView)):
        raise ValueError("the file holds a bare storage where a tensor was expected")
    if isinstance(obj, dict):
        return type(obj)((k, _arrays(v, data)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v, data) for v in obj)
    return obj


def _is_zip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"  # torch.serialization._is_zipfile


def _parse(path: str) -> Any:
    """The unpickled object of a `.pth` file, tensors as ndarrays. Raises TorchCheckpointError."""
    _check_little_endian_host()
    try:
        obj, data = (_read_zip if _is_zip(path) else _read_legacy)(path)
        return _arrays(obj, data)
    except TorchCheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            struct.error, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise TorchCheckpointError(f"{path}: cannot parse as a PyTorch checkpoint: {type(e).__name__}: {e}") from e


def _torch_load(path: str, error: TorchCheckpointError) -> Any:
    """The fallback: torch.load(weights_only=True), tensors converted to ndarrays."""
    try:
        import torch
    except ImportError:
        raise TorchCheckpointError(f"{error} (torch is not installed; to try torch.load on this file, "
                                   "install it: pip install torch)") from error
    log.warning("%s; reading it with torch.load(weights_only=True) instead", error)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any torch failure is reported with ours
        raise TorchCheckpointError(f"{error}; torch.load(weights_only=True) failed too: {e}") from e

    def convert(x):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu()
            if x.dtype == torch.bfloat16:
                return x.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
            return x.numpy().copy()
        if isinstance(x, dict):
            return type(x)((k, convert(v)) for k, v in x.items())
        if isinstance(x, (list, tuple)):
            return type(x)(convert(v) for v in x)
        return x

    return convert(obj)


def _state_dict(obj: Any, path: str) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise TorchCheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
    for wrapper in ("state_dict", "model"):  # {'state_dict': ...} or {'model': ..., 'optimizer': ...}
        if isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    bad = {k: type(v).__name__ for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)}
    if bad:
        raise TorchCheckpointError(f"{path}: not a state_dict: entries that are not str -> tensor: {bad}")
    if obj and all(k.startswith("module.") for k in obj):  # saved from nn.DataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The state_dict saved at `path` (either torch.save format) as {key: ndarray}, no torch needed.

    A top-level {'state_dict': ...} or {'model': ...} wrapper is unwrapped and a 'module.' prefix
    on every key (nn.DataParallel) is stripped. A file this reader cannot parse is passed to
    `torch.load(path, map_location='cpu', weights_only=True)` if torch is installed; otherwise the
    error says so. Every error names the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such PyTorch checkpoint file")
    try:
        obj = _parse(path)
    except TorchCheckpointError as e:
        obj = _torch_load(path, e)
    return _state_dict(obj, path)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------

class _Global:
    """A module-level name written as a GLOBAL opcode without importing its module (torch)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce insists that the function be callable
        raise TypeError(f"{self.module}.{self.name} is a pickle stand-in, not a function")


@functools.cache
def _global(module: str, name: str) -> _Global:
    return _Global(module, name)  # one object per name, so the pickler memoizes it as torch's does


class _StorageOut:
    def __init__(self, key: str, dtype: np.dtype, data: bytes):
        self.key, self.dtype, self.data = key, dtype, data
        self.numel = len(data) // dtype.itemsize


class _TensorOut:
    def __init__(self, storage: _StorageOut, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (_global("torch._utils", "_rebuild_tensor_v2"),
                (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


class _TorchPickler(pickle._Pickler):  # the Python pickler: its dispatch table can be extended
    """Pickles _TensorOut as torch does: storages as persistent ids, torch names as GLOBAL opcodes."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, *, legacy: bool):
        super().__init__(file, protocol=PICKLE_PROTOCOL)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, _StorageOut):
            return None
        pid = ("storage", _global("torch", _STORAGE_NAMES[obj.dtype]), obj.key, "cpu", obj.numel)
        return pid + (None,) if self.legacy else pid  # legacy: view_metadata = None

    def _save_global_name(self, obj: _Global):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[_Global] = _save_global_name


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class _Storages:
    """Assigns storages to arrays: arrays viewing one NumPy buffer share one storage."""

    def __init__(self):
        self.by_root: dict[int, tuple[np.ndarray, _StorageOut]] = {}
        self.tensors: dict[int, tuple[Any, _TensorOut]] = {}

    def _new(self, dtype: np.dtype, data: bytes) -> _StorageOut:
        key = str(len(self.by_root))
        storage = _StorageOut(key, dtype, data)
        self.by_root[id(storage)] = (None, storage)
        return storage

    def tensor(self, value) -> _TensorOut:
        if id(value) in self.tensors:  # the same array under two keys (tied weights): one tensor
            return self.tensors[id(value)][1]
        a = np.asarray(value)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        if a.dtype not in _STORAGE_NAMES:
            raise TypeError(f"dtype {a.dtype} has no torch storage type")
        out = self._view(a) or self._copy(a)
        self.tensors[id(value)] = (value, out)  # keep `value` alive so its id is not reused
        return out

    def _copy(self, a: np.ndarray) -> _TensorOut:
        storage = self._new(a.dtype, np.ascontiguousarray(a).tobytes())
        return _TensorOut(storage, 0, a.shape, _contiguous_strides(a.shape))

    def _view(self, a: np.ndarray) -> _TensorOut | None:
        """`a` as a view into the storage of the buffer it views, or None to write a copy."""
        if a.size == 0:
            return None
        root = a
        while isinstance(root.base, np.ndarray):
            root = root.base
        item = a.dtype.itemsize
        offset = a.ctypes.data - root.ctypes.data
        if (root.dtype != a.dtype or not (root.flags.c_contiguous or root.flags.f_contiguous)
                or offset < 0 or offset % item or any(s < 0 or s % item for s in a.strides)):
            return None
        if id(root) not in self.by_root:
            key = str(len(self.by_root))
            self.by_root[id(root)] = (root, _StorageOut(key, a.dtype, root.tobytes(order="A")))
        storage = self.by_root[id(root)][1]
        return _TensorOut(storage, offset // item, a.shape, tuple(s // item for s in a.strides))

    def storages(self) -> list[_StorageOut]:
        return [storage for _, storage in self.by_root.values()]


def _pickle(obj: Any, legacy: bool) -> tuple[bytes, list[_StorageOut]]:
    """Protocol-2 pickle of `obj` with its arrays as torch tensors, and the storages they use."""
    storages = _Storages()

    def tensors(x):
        if isinstance(x, (np.ndarray, np.generic)):
            return storages.tensor(x)
        if isinstance(x, dict):
            return type(x)((k, tensors(v)) for k, v in x.items())
        if isinstance(x, (list, tuple)):
            return type(x)(tensors(v) for v in x)
        return x

    buf = io.BytesIO()
    _TorchPickler(buf, legacy=legacy).dump(tensors(obj))
    return buf.getvalue(), storages.storages()


def _write_legacy(f, pickled: bytes, storages: list[_StorageOut]) -> None:
    sys_info = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}  # torch's values (LONG_SIZE = 4)
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, sys_info):
        pickle.dump(header, f, protocol=PICKLE_PROTOCOL)
    f.write(pickled)
    by_key = {s.key: s for s in storages}
    keys = sorted(by_key)  # torch writes the keys sorted as strings, then the data in that order
    pickle.dump(keys, f, protocol=PICKLE_PROTOCOL)
    for key in keys:
        f.write(struct.pack("<q", by_key[key].numel))
        f.write(by_key[key].data)


def _write_record(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    """A stored record whose data starts on a 64-byte boundary (padding in an 'FB' extra field)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    header = archive.fp.tell() + 30 + len(name.encode("utf-8")) + 4  # local header + one extra field
    pad = -header % ZIP_ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    archive.writestr(info, data)


def _write_zip(path: str, pickled: bytes, storages: list[_StorageOut]) -> None:
    prefix = "archive/"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        _write_record(archive, prefix + "data.pkl", pickled)
        _write_record(archive, prefix + "byteorder", b"little")
        for storage in sorted(storages, key=lambda s: int(s.key)):
            _write_record(archive, f"{prefix}data/{storage.key}", storage.data)
        _write_record(archive, prefix + "version", ZIP_FILE_FORMAT_VERSION)


def write_checkpoint(path: str | os.PathLike, obj: Any, format: str = "legacy") -> None:
    """Write `obj` as torch.save(obj) would, without torch: NumPy arrays become tensors; dicts,
    OrderedDicts, lists, tuples, str, int, float, bool and None stay as they are.

    `format`: "legacy" (torch < 1.6, as the released STSTNet weights) or "zip" (torch >= 1.6).
    Arrays that view one NumPy buffer are written as views of one storage (offset and strides kept);
    the same array object in two places is written once and referenced twice, as torch does.
    """
    _check_little_endian_host()
    if format not in ("legacy", "zip"):
        raise ValueError(f"format must be 'legacy' or 'zip', got {format!r}")
    path = os.fspath(path)
    try:
        pickled, storages = _pickle(obj, legacy=format == "legacy")
    except (TypeError, pickle.PicklingError) as e:
        raise TorchCheckpointError(f"{path}: cannot write: {e}") from e
    if format == "zip":
        _write_zip(path, pickled, storages)
    else:
        with open(path, "wb") as f:
            _write_legacy(f, pickled, storages)


def write_state_dict(path: str | os.PathLike, tensors: Mapping[str, Any], format: str = "legacy") -> None:
    """Write `tensors` ({key: array}) as `torch.save(state_dict, path)` would (see write_checkpoint)."""
    bad = {k: type(v).__name__ for k, v in tensors.items()
           if not isinstance(k, str) or not isinstance(v, (np.ndarray, np.generic))}
    if bad:
        raise TorchCheckpointError(f"{os.fspath(path)}: a state_dict maps str -> array; bad entries: {bad}")
    write_checkpoint(path, collections.OrderedDict(tensors), format)
