"""The default demo config of ``fermiflow run`` (configs/demo.toml holds the same text)."""

__all__ = ["DEMO_TOML"]

DEMO_TOML = """\
# Demo (`fermiflow run` without a config): 3 interacting electrons (2 up, 1 down) in a
# 2D harmonic dot, omega = 1 Ha, Coulomb coupling 1, T = 0.5 Ha (beta = 2), 10 oscillator
# modes per spin; categorical p(K) over the occupations within 5 Ha of the ideal ground
# state, pretrained on the ideal Boltzmann weights, then trained with the backflow.
#
# Exact non-interacting reference (same modes): F0/N = 1.116145 Ha, E0/N = 1.557524 Ha,
#   S0/N = 0.882759 k_B.
# Expected result (measured with shorter runs of this config on a 2-core CPU, not a
#   literature value): F/N in [1.85, 1.95] Ha, E/N in [2.35, 2.50] Ha.
[system]
kind = "quantum_dot"
dim = 2
n_up = 2
n_down = 1
omega = 1.0
coupling = 1.0
beta = 2.0
n_shells = 4

[model]
occupation = "categorical"
max_excitation = 5.0
flow = "backflow"

[sampler]
batch = 256
n_sweeps = 5
n_extra_sweeps = 5

[optimizer]
occupation = "sr"
max_norm = 0.05
wavefunction = "adam"
wavefunction_learning_rate = 1e-3

[run]
n_steps = 300
checkpoint_every = 50
pretrain_steps = 300
pretrain_learning_rate = 0.05
"""
