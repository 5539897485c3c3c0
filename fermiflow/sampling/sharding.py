"""Sharding of the walker batch over devices with ``jax.sharding`` (no pmap).

Arrays with a leading walker axis are split over a 1-d mesh named ``"walkers"``;
everything else (parameters, widths, keys) is replicated. The samplers draw their
random numbers per walker from ``jax.random.split(key, batch)``, so a sharded run gives
the samples of an unsharded one for the same key (up to the summation order of
cross-walker means).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "WALKER_AXIS",
    "place",
    "replicate",
    "shard_walkers",
    "walker_mesh",
    "walker_shardings",
]

WALKER_AXIS = "walkers"


def walker_mesh(devices: list | None = None) -> Mesh:
    """Return a 1-d mesh over ``devices`` (default: all of ``jax.devices()``).

    Args:
      devices: the devices to use, or None for all.

    Returns:
      A :class:`jax.sharding.Mesh` with the single axis ``"walkers"``.

    Examples:
      >>> walker_mesh().axis_names
      ('walkers',)
    """
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (WALKER_AXIS,))


def _check_split(batch: int, mesh: Mesh) -> None:
    n_devices = mesh.devices.size
    if batch % n_devices:
        raise ValueError(
            f"batch={batch} walkers cannot be split over {n_devices} devices; "
            f"use a multiple of {n_devices}."
        )


def walker_shardings(tree: Any, batch: int, mesh: Mesh | None = None) -> Any:
    """Return the shardings of a pytree: leaves (batch, ...) split, the rest replicated.

    Args:
      tree: a pytree of arrays or ``jax.ShapeDtypeStruct`` (e.g. a sampler state);
        only pass trees whose batch-sized leading axes are walker axes.
      batch: the walker count; it must be a multiple of the number of devices.
      mesh: the mesh (default: ``walker_mesh()``).

    Returns:
      A pytree of :class:`jax.sharding.NamedSharding` of the same structure.

    Raises:
      ValueError: if batch is not a multiple of the number of devices.
    """
    mesh = walker_mesh() if mesh is None else mesh
    _check_split(batch, mesh)
    split = NamedSharding(mesh, PartitionSpec(WALKER_AXIS))
    whole = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda a: split if np.shape(a)[:1] == (batch,) else whole, tree)


def place(tree: Any, shardings: Any) -> Any:
    """Put a (host) pytree on the devices with the given shardings; typed PRNG keys too.

    Args:
      tree: a pytree of arrays (NumPy, JAX, or typed PRNG key arrays).
      shardings: a pytree of shardings of the same structure.

    Returns:
      The placed pytree.
    """

    def put(value, sharding):
        if jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key):
            data = jax.device_put(np.asarray(jax.random.key_data(value)), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(value))
        return jax.device_put(np.asarray(value), sharding)

    return jax.tree.map(put, tree, shardings)


def shard_walkers(tree: Any, batch: int, mesh: Mesh | None = None) -> Any:
    """Place every leaf with leading axis ``batch`` split over the mesh; replicate the rest.

    Args:
      tree: a pytree (e.g. a sampler state); leaves of shape (batch, ...) are split.
      batch: the walker count; it must be a multiple of the number of devices.
      mesh: the mesh (default: ``walker_mesh()``).

    Returns:
      The same pytree, placed on the devices.

    Raises:
      ValueError: if batch is not a multiple of the number of devices.
    """
    return place(tree, walker_shardings(tree, batch, mesh))


def replicate(tree: Any, mesh: Mesh | None = None) -> Any:
    """Replicate every leaf of a pytree (e.g. parameters) on all devices of the mesh.

    Args:
      tree: a pytree of arrays.
      mesh: the mesh (default: ``walker_mesh()``).

    Returns:
      The same pytree, replicated.
    """
    mesh = walker_mesh() if mesh is None else mesh
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
