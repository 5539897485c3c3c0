"""Checkpoints: bit-exact round trips, atomic writes, rotation, fallback past broken files."""

import json
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fermiflow.run.checkpoint import (
    gather,
    list_checkpoints,
    load_checkpoint,
    restore_latest,
    save_checkpoint,
)
from fermiflow.run.provenance import versions


class _Walkers(NamedTuple):
    x: jax.Array
    width: jax.Array


class _State(NamedTuple):
    step: jax.Array
    params: dict
    opt_state: tuple
    walkers: _Walkers
    key: jax.Array


def _state(seed: int, step: int = 0) -> _State:
    key = jax.random.key(seed)
    k1, k2, k3 = jax.random.split(key, 3)
    params = {"w": jax.random.normal(k1, (3, 4)), "b": jnp.arange(4, dtype=jnp.float32)}
    optimizer = optax.chain(optax.clip(1.0), optax.adam(1e-3))
    walkers = _Walkers(jax.random.uniform(k2, (8, 2, 2)), jnp.asarray(0.3))
    opt_state = (optimizer.init(params), None)
    return _State(jnp.asarray(step, jnp.int32), params, opt_state, walkers, k3)


def _assert_equal(a, b):
    a = jax.tree.map(lambda x: np.asarray(jax.random.key_data(x)) if jnp.issubdtype(
        x.dtype, jax.dtypes.prng_key) else np.asarray(x), a)
    b = jax.tree.map(lambda x: np.asarray(jax.random.key_data(x)) if jnp.issubdtype(
        x.dtype, jax.dtypes.prng_key) else np.asarray(x), b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)  # bit for bit (no NaNs here)


def test_round_trip_is_bit_exact_and_keeps_types(tmp_path):
    state = _state(0, step=7)
    path = save_checkpoint(tmp_path, state, step=7, metadata={"config": {"a": 1}}, keep=3)
    assert path.name == "ckpt_000000007.msgpack"
    restored = load_checkpoint(path, jax.eval_shape(lambda: state))
    _assert_equal(restored.state, state)
    assert isinstance(restored.state, _State) and isinstance(restored.state.walkers, _Walkers)
    assert restored.state.opt_state[1] is None
    assert jnp.issubdtype(restored.state.key.dtype, jax.dtypes.prng_key)
    # The restored key continues the same random stream.
    assert np.array_equal(jax.random.normal(restored.state.key, (5,)),
                          jax.random.normal(state.key, (5,)))
    assert restored.metadata == {"config": {"a": 1}}


def test_keeps_the_newest_files_and_leaves_no_temporaries(tmp_path):
    for step in range(0, 60, 10):
        save_checkpoint(tmp_path, _state(step, step), step=step, metadata={}, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "ckpt_000000030.msgpack", "ckpt_000000040.msgpack", "ckpt_000000050.msgpack"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        p.name for p in list_checkpoints(tmp_path)]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_broken_last_checkpoint_falls_back_with_a_warning(tmp_path, damage):
    template = jax.eval_shape(lambda: _state(0))
    for step in (10, 20):
        save_checkpoint(tmp_path, _state(step, step), step=step, metadata={"step": step})
    last = list_checkpoints(tmp_path)[-1]
    blob = last.read_bytes()
    if damage == "truncate":
        last.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        middle = len(blob) // 2
        last.write_bytes(blob[:middle] + bytes([blob[middle] ^ 1]) + blob[middle + 1:])
    elif damage == "empty":
        last.write_bytes(b"")
    else:
        last.write_bytes(b"not a checkpoint at all")
    with pytest.warns(UserWarning, match=r"skipping checkpoint .*ckpt_000000020"):
        restored = restore_latest(tmp_path, template)
    assert restored.path.name == "ckpt_000000010.msgpack"
    assert restored.metadata == {"step": 10}
    _assert_equal(restored.state, _state(10, 10))


def test_no_readable_checkpoint_raises(tmp_path):
    template = jax.eval_shape(lambda: _state(0))
    with pytest.raises(FileNotFoundError, match="no readable checkpoint"):
        restore_latest(tmp_path, template)
    (tmp_path / "ckpt_000000001.msgpack").write_bytes(b"x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FileNotFoundError, match="1 files tried"):
            restore_latest(tmp_path, template)


def test_structure_or_shape_mismatch_is_rejected(tmp_path):
    path = save_checkpoint(tmp_path, _state(0), step=0, metadata={})
    other = _state(0)._replace(walkers=_Walkers(jnp.zeros((4, 2, 2)), jnp.asarray(0.3)))
    with pytest.raises(ValueError, match=r"expected \(4, 2, 2\) float"):
        load_checkpoint(path, jax.eval_shape(lambda: other))
    with pytest.raises(ValueError, match="structure does not match"):
        load_checkpoint(path, {"step": jnp.zeros((), jnp.int32)})


def test_no_pickle_in_the_file(tmp_path):
    path = save_checkpoint(tmp_path, _state(0), step=0, metadata={})
    assert b"pickle" not in path.read_bytes() and not path.read_bytes().startswith(b"\x80")


def test_gather_and_versions():
    state = _state(1)
    host = gather(state)
    assert isinstance(host.params["w"], np.ndarray)
    assert jnp.issubdtype(host.key.dtype, jax.dtypes.prng_key)
    info = versions()
    assert info["jax"] == jax.__version__ and info["process_count"] == 1
    assert "git_commit" in info and json.dumps(info)
