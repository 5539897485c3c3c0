"""Devices and hosts: walkers split over 4 forced CPU devices, and over 2 processes (gloo).

Each check runs in subprocesses: the device count is fixed when JAX starts.
"""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

TINY = (Path(__file__).parent / "tiny_dot.toml").read_text()

_FOUR_DEVICES = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    from jax.sharding import PartitionSpec
    jax.config.update("jax_enable_x64", True)
    assert len(jax.devices()) == 4, jax.devices()
    from fermiflow.run.checkpoint import gather
    from fermiflow.run.config import load_config
    from fermiflow.run.engine import build_engine

    config = load_config(sys.argv[1], ["optimizer.wavefunction=sr"])
    one = build_engine(config, devices=jax.devices()[:1])
    four = build_engine(config)
    initial, _ = one.init()

    def run(engine):
        state = engine.place(initial)
        for _ in range(5):
            state, metrics = engine.step(state)
            assert bool(metrics.update_applied)
        return state

    a, b = run(one), run(four)
    x = b.sampler_state.walkers.chain.position
    assert len(x.sharding.device_set) == 4 and x.sharding.spec == PartitionSpec("walkers")
    assert all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(b.params))
    a, b = gather(a), gather(b)
    assert int(a.step) == int(b.step) == 5
    assert np.array_equal(a.sampler_state.occ, b.sampler_state.occ)
    diff = max(float(np.max(np.abs(u - v) / np.maximum(1.0, np.abs(u))))
               for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)))
    moved = max(float(np.max(np.abs(u - v))) for u, v in
                zip(jax.tree.leaves(a.params), jax.tree.leaves(initial.params)))
    walkers = float(np.max(np.abs(a.sampler_state.walkers.chain.position
                                  - b.sampler_state.walkers.chain.position)))
    print("MAXDIFF", diff, "MOVED", moved, "WALKERS", walkers)
    """
)


def _env(tmp_path: Path, **extra) -> dict:
    return dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONPATH=str(Path(__file__).parents[2]), **extra)


def _tiny(tmp_path: Path, n_steps: int) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.replace("n_steps = 240", f"n_steps = {n_steps}").replace(
        "checkpoint_every = 10", "checkpoint_every = 5"))
    return path


@pytest.mark.slow  # ~70 s of compiles; the sampler's four-device test stays default
def test_four_devices_give_the_params_of_one_device(tmp_path):
    """5 training steps (SR for both networks) on a 4-device mesh vs one device."""
    result = subprocess.run(
        [sys.executable, "-c", _FOUR_DEVICES, str(_tiny(tmp_path, 5))],
        env=_env(tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=4"),
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(w for w in result.stdout.splitlines() if w.startswith("MAXDIFF")).split()
    diff, moved = float(line[1]), float(line[3])
    print("1 vs 4 devices:", " ".join(line))
    assert moved > 1e-4, "the params did not move: the comparison would be empty"
    assert diff < 1e-10, f"1 vs 4 devices differ by {diff:.3e} (relative) after 5 steps"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _final_params(run_dir: Path, step: int):
    blob = (run_dir / "checkpoints" / f"ckpt_{step:09d}.msgpack").read_bytes()
    return serialization.msgpack_restore(blob[40:])["state"]["params"]


@pytest.mark.slow
def test_two_processes_with_gloo_reproduce_one_process(tmp_path):
    """2 processes x 2 CPU devices (gloo) vs 1 process x 4 devices: same mesh size."""
    n_steps, config = 10, _tiny(tmp_path, 10)
    cli = [sys.executable, "-m", "fermiflow.run.cli", "run", str(config)]
    two = _env(tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    port = _free_port()
    workers = [subprocess.Popen(
        [*cli, "--run-dir", str(tmp_path / "multi"), "--coordinator", f"localhost:{port}",
         "--num-processes", "2", "--process-id", str(i)],
        env=two, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    single = subprocess.run(
        [*cli, "--run-dir", str(tmp_path / "single")], capture_output=True, text=True,
        env=_env(tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=4"), timeout=1200)
    outputs = [w.communicate(timeout=1200) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]
    assert "F/N" in outputs[0][0] and "F/N" not in outputs[1][0]  # process 0 reports
    a, b = _final_params(tmp_path / "multi", n_steps), _final_params(tmp_path / "single", n_steps)
    diff = max(float(np.max(np.abs(u - v) / np.maximum(1.0, np.abs(u))))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    print("MULTIHOST MAXDIFF", diff)
    assert diff < 1e-10, f"2 processes vs 1 differ by {diff:.3e} (relative)"
