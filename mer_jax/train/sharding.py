"""The device mesh ('fold', 'data'): folds sharded over 'fold', each fold's batch over 'data'."""
from __future__ import annotations

import jax
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P


def make_mesh(fold_devices: int = -1, data_devices: int = 1) -> jax.sharding.Mesh:
    """Mesh over the first fold_devices x data_devices devices (-1 = all remaining devices)."""
    total = jax.device_count()
    if data_devices < 1 or total % data_devices:
        raise ValueError(f"mesh.data_devices={data_devices} must divide the {total} devices")
    if fold_devices == -1:
        fold_devices = total // data_devices
    if fold_devices < 1 or fold_devices * data_devices > total:
        raise ValueError(f"mesh {fold_devices} x {data_devices} does not fit {total} devices")
    return jax.make_mesh((fold_devices, data_devices), ("fold", "data"),
                         axis_types=(AxisType.Auto, AxisType.Auto),
                         devices=jax.devices()[:fold_devices * data_devices])


def fold_sharded(mesh) -> NamedSharding:
    """Leading (fold) axis split over 'fold'; the rest replicated."""
    return NamedSharding(mesh, P("fold"))


def fold_batch_sharded(mesh) -> NamedSharding:
    """[F, B, ...] arrays: folds over 'fold', batch over 'data'."""
    return NamedSharding(mesh, P("fold", "data"))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, P())
