"""Regression guard for the jaxlib 0.10.x CPU deadlock (see pyproject.toml).

The gradient of slogdet for a real and a complex batch in one jitted function puts
two batched LAPACK triangular solves into XLA's CPU thread pool; on 2-core machines
jaxlib 0.10.x could leave both waiting on each other for ever. The pattern runs in a
subprocess under a timeout, so a hang fails this test instead of stalling CI.
"""

import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    @jax.jit
    def step(a, c):
        grad_real = jax.grad(lambda a: jnp.linalg.slogdet(a)[1].sum())(a)
        grad_complex = jax.grad(lambda c: jnp.linalg.slogdet(c)[1].sum())(c)
        return grad_real, grad_complex

    key_a, key_re, key_im = jax.random.split(jax.random.key(0), 3)
    a = jax.random.normal(key_a, (64, 8, 8))
    c = jax.random.normal(key_re, (64, 8, 8)) + 1j * jax.random.normal(key_im, (64, 8, 8))
    for i in range(300):
        jax.block_until_ready(step(a + 1e-3 * i, c - 1e-3 * i))
    print("finished", jax.__version__)
    """
)


def test_batched_slogdet_gradients_do_not_deadlock():
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        timeout=180,  # the loop takes ~1 s; a deadlock never returns
    )
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout
