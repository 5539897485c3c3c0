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

__all__ = ["WALKER_AXIS", "replicate", "shard_walkers", "walker_mesh"]

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
    mesh = walker_mesh() if mesh is None else mesh
    n_devices = mesh.devices.size
    if batch % n_devices:
        raise ValueError(
            f"batch={batch} walkers cannot be split over {n_devices} devices; "
            f"use a multiple of {n_devices}."
        )
    split = NamedSharding(mesh, PartitionSpec(WALKER_AXIS))
    whole = NamedSharding(mesh, PartitionSpec())

    def place(leaf):
        shape = np.shape(leaf)
        target = split if shape and shape[0] == batch else whole
        return jax.device_put(leaf, target)

    return jax.tree.map(place, tree)


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
