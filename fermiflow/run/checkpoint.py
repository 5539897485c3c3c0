"""Checkpoints: atomic msgpack files of a training state, with fallback on corruption.

A checkpoint is one file ``ckpt_<step>.msgpack`` in a directory: an 8-byte magic, the
SHA-256 of the payload, and the payload, ``flax.serialization`` msgpack (never pickle)
of ``{"state": ..., "metadata": ...}``. The state is any pytree of arrays (for
training, :class:`fermiflow.training.step.TrainState`: both networks' params, the optimizer
states, the sampler state with walkers, K and width, the PRNG key and the step);
PRNG keys are stored as ``jax.random.key_data`` and rewrapped on restore. The metadata
holds JSON-ready values (the resolved config, versions, learning-rate scale).

Writes are atomic: a temporary file in the same directory, flushed and fsync'ed,
then ``os.replace``. Only the newest ``keep`` files are kept. On restore a file that
is truncated, corrupted (checksum) or does not match the expected structure is
skipped with a warning and the previous one is used.

Host-side I/O only: states are gathered to NumPy before saving.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import serialization

__all__ = ["Checkpoint", "gather", "list_checkpoints", "load_checkpoint", "restore_latest",
           "save_checkpoint"]

_MAGIC = b"FFCKPT1\n"
_PATTERN = re.compile(r"^ckpt_(\d{9})\.msgpack$")


class Checkpoint(NamedTuple):
    """A restored checkpoint.

    Attributes:
      state: the pytree, with the structure of the template, NumPy leaves and
        PRNG keys rewrapped.
      metadata: dict of JSON values stored with it.
      path: the file it came from.
    """

    state: Any
    metadata: dict
    path: Path


def _is_key(leaf: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(leaf, "dtype", np.float64), jax.dtypes.prng_key)


def _to_host(tree: Any) -> Any:
    def encode(leaf):
        if _is_key(leaf):
            return np.asarray(jax.random.key_data(leaf))
        return np.asarray(leaf)

    return jax.tree.map(encode, tree)


def gather(tree: Any) -> Any:
    """Return a pytree of device arrays as NumPy arrays (keys kept), from all hosts.

    A global array that spans several processes is gathered whole
    (``process_allgather``, a collective: every process must call this with the same
    tree); process-local arrays are read as they are.
    """

    def fetch(leaf):
        key = _is_key(leaf)
        data = jax.random.key_data(leaf) if key else leaf
        if isinstance(data, jax.Array) and not data.is_fully_addressable:
            from jax.experimental import multihost_utils

            data = multihost_utils.process_allgather(data, tiled=True)
        data = np.asarray(data)
        return jax.random.wrap_key_data(data, impl=leaf.dtype._impl) if key else data  # noqa: SLF001

    return jax.tree.map(fetch, tree)


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Return the checkpoint files of a directory, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if _PATTERN.match(p.name)]
    return sorted(files, key=lambda p: int(_PATTERN.match(p.name).group(1)))


def save_checkpoint(
    directory: str | Path, state: Any, *, step: int, metadata: dict, keep: int = 3
) -> Path:
    """Write ``state`` atomically as checkpoint ``step``; keep the newest ``keep``.

    Args:
      directory: the checkpoint directory (created if missing).
      state: a pytree of arrays (host or fully addressable device arrays).
      step: the optimization step of the state (names the file).
      metadata: JSON-ready values stored beside the state.
      keep: how many checkpoints to keep (>= 1); older files are deleted.

    Returns:
      The path written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = serialization.msgpack_serialize(
        {"state": serialization.to_state_dict(_to_host(state)),
         "metadata": json.dumps(metadata, sort_keys=True)}
    )
    path = directory / f"ckpt_{step:09d}.msgpack"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".msgpack")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
    for old in list_checkpoints(directory)[:-max(int(keep), 1)]:
        old.unlink(missing_ok=True)
    return path


def _check_leaf(path: str, value: Any, template: Any) -> Any:
    if _is_key(template):
        data_shape = jax.eval_shape(jax.random.key_data, template).shape
        if not isinstance(value, np.ndarray) or value.shape != data_shape:
            raise ValueError(f"{path}: expected PRNG key data {data_shape}")
        return jax.random.wrap_key_data(value, impl=template.dtype._impl)  # noqa: SLF001
    value, shape, dtype = np.asarray(value), tuple(template.shape), np.dtype(template.dtype)
    if value.shape != shape or value.dtype != dtype:
        raise ValueError(f"{path}: expected {shape} {dtype}, got {value.shape} {value.dtype}")
    return value


def _paths(tree: Any, prefix: str = "") -> set[str]:
    if isinstance(tree, dict) and tree:
        return set().union(*(_paths(v, f"{prefix}/{k}") for k, v in tree.items()))
    return {prefix}


def load_checkpoint(path: str | Path, template: Any) -> Checkpoint:
    """Read one checkpoint into the structure of ``template``.

    Args:
      path: the file.
      template: a pytree with the structure, shapes and dtypes of the state (arrays
        or ``jax.ShapeDtypeStruct``, e.g. from ``jax.eval_shape``).

    Returns:
      The :class:`Checkpoint`.

    Raises:
      ValueError: if the file is truncated, corrupted or does not match the template.
    """
    path = Path(path)
    blob = path.read_bytes()
    head = len(_MAGIC) + 32
    if len(blob) < head or blob[: len(_MAGIC)] != _MAGIC:
        raise ValueError(f"{path.name}: not a fermiflow checkpoint (or truncated)")
    payload = blob[head:]
    if hashlib.sha256(payload).digest() != blob[len(_MAGIC):head]:
        raise ValueError(f"{path.name}: checksum mismatch (truncated or corrupted)")
    raw = serialization.msgpack_restore(payload)
    encoded = jax.eval_shape(lambda t: t, template)
    encoded = jax.tree.map(
        lambda t: jax.ShapeDtypeStruct(jax.eval_shape(jax.random.key_data, t).shape, np.uint32)
        if _is_key(t) else t, encoded)
    if _paths(raw["state"]) != _paths(serialization.to_state_dict(encoded)):
        raise ValueError(f"{path.name}: structure does not match the run (other model, "
                         "sampler or optimizer)")
    try:
        state = serialization.from_state_dict(encoded, raw["state"])
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{path.name}: structure does not match the run: {error}") from None
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    templates = jax.tree.leaves(template)
    if len(leaves) != len(templates):
        raise ValueError(f"{path.name}: {len(leaves)} arrays, the run has {len(templates)}")
    checked = [_check_leaf(f"{path.name}:{jax.tree_util.keystr(p)}", v, t)
               for (p, v), t in zip(leaves, templates, strict=True)]
    metadata = json.loads(raw["metadata"])
    return Checkpoint(jax.tree_util.tree_unflatten(treedef, checked), metadata, path)


def restore_latest(directory: str | Path, template: Any) -> Checkpoint:
    """Restore the newest readable checkpoint, falling back past broken ones.

    Args:
      directory: the checkpoint directory.
      template: the structure of the state (see :func:`load_checkpoint`).

    Returns:
      The newest :class:`Checkpoint` that loads; each one skipped raises a
      ``UserWarning`` naming the file and the reason.

    Raises:
      FileNotFoundError: if the directory holds no readable checkpoint.
    """
    candidates = list_checkpoints(directory)
    for path in reversed(candidates):
        try:
            return load_checkpoint(path, template)
        except (ValueError, OSError) as error:
            warnings.warn(f"skipping checkpoint {path}: {error}; falling back to the "
                          "previous one.", stacklevel=2)
    raise FileNotFoundError(
        f"no readable checkpoint in {directory} ({len(candidates)} files tried)."
    )
