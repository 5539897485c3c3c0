"""The tables of a run configuration: nested frozen dataclasses with their defaults.

One dataclass per TOML table (``[system]``, ``[model]``, ``[sampler]``,
``[optimizer]``, ``[run]``) and :class:`Config` for the whole run. Parsing, overrides
and validation live in :mod:`fermiflow.run.config`, which re-exports these names.
Units: as in :mod:`fermiflow.run.config` (rs in Bohr, omega and temperature in Hartree).
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "OBSERVABLES",
    "KINDS",
    "KIND_DEFAULTS",
    "KIND_KEYS",
    "Config",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "SamplerConfig",
    "SystemConfig",
]

_frozen = dataclasses.dataclass(frozen=True, kw_only=True)
# The observables of `fermiflow observe` (fermiflow.run.observe).
OBSERVABLES = ("thermodynamics", "pair", "structure_factor", "momentum", "density")
KINDS = ("electron_gas", "quantum_dot", "classical")
KIND_KEYS = {  # keys of [system] that belong to each kind (None elsewhere)
    "electron_gas": ("n_up", "n_down", "rs", "theta", "emax", "twist"),
    "quantum_dot": ("n_up", "n_down", "omega", "coupling", "beta", "temperature", "n_shells"),
    "classical": ("n", "omega", "coupling", "beta", "temperature"),
}
KIND_DEFAULTS = {"quantum_dot": {"omega": 1.0, "coupling": 1.0},
                  "classical": {"omega": 1.0, "coupling": 1.0}}


@_frozen
class SystemConfig:
    """The physical system (see the module docstring for units and kinds)."""

    kind: str = "quantum_dot"
    dim: int = 2
    n_up: int | None = None
    n_down: int | None = None
    n: int | None = None  # classical particles
    rs: float | None = None
    theta: float | None = None
    emax: int | None = None
    twist: tuple[float, ...] | None = None
    omega: float | None = None
    coupling: float | None = None
    beta: float | None = None
    temperature: float | None = None
    n_shells: int | None = None


@_frozen
class ModelConfig:
    """p(K) and the flow; the transformer/backflow sizes apply to those choices."""

    occupation: str = "categorical"  # transformer | categorical | ground_state
    # categorical: Hartree above the ideal ground state (default 14 T, set by resolve)
    max_excitation: float | None = None
    n_layers: int = 2
    model_size: int = 16
    n_heads: int = 4
    hidden: int = 32
    # p(K) averaged over the symmetry group of the modes (fermiflow.models.symmetry)
    occupation_symmetry: bool = True
    # n_up = n_down: Psi_K as spin-block exchange (singlet/triplet) combinations
    spin_adapted: bool = False
    # with spin_adapted: separate flows for the even and the odd exchange sectors
    parity_flows: bool = False
    # box: one flow per parity class of the total momentum (models/sector_flows.py)
    momentum_flows: bool = False
    flow: str = "backflow"  # backflow | identity | ode
    depth: int = 2
    width_one: int = 16
    width_two: int = 16
    n_frequencies: int = 3
    init_scale: float = 1e-2
    radial_blocks: int = 0  # backflow in a box: extra certified radial pair layers
    # backflow in a box: cap the residual so that it provably never folds (false: the
    # fold weight is measured instead, fermiflow.observables.fold_weight)
    certify: bool = True
    free_displacement: bool = False  # backflow in a box: + a free vector per particle
    # backflow in a box: order M of a last Fourier vector pair layer (0: none), which
    # moves particles in any direction (fermiflow.models.backflow)
    pair_field: int = 0
    ode_steps: int = 8  # flow = "ode": RK4 steps on t in [0, 1] (hidden width: width_one)
    base_scale: float = 1.0  # classical flow: width of the Gaussian base, Bohr


@_frozen
class SamplerConfig:
    """Walkers: ``batch`` is global (split over all devices and hosts)."""

    # auto (exact i.i.d. where it applies, else latent/metropolis) | exact | metropolis
    # | latent; see fermiflow.run.build.sampler_kind
    kind: str = "auto"
    batch: int = 256
    n_sweeps: int = 10
    n_extra_sweeps: int = 10
    width: float | None = None
    target_acceptance: float = 0.5
    kernel: str = "rwm"  # rwm | mala
    n_thermalize: int = 20


@_frozen
class OptimizerConfig:
    """One optimizer per network: "sr" (natural gradient), "adam", "sgd" or "none"."""

    occupation: str = "sr"
    occupation_learning_rate: float = 1.0
    wavefunction: str = "sr"
    wavefunction_learning_rate: float = 1.0
    # Learning rates decay from their value to final_fraction times it over run.n_steps
    # ("cosine"), or stay ("constant").
    schedule: str = "constant"
    final_fraction: float = 1.0
    damping: float = 1e-3
    max_norm: float | None = 1e-2
    clip_width: float | None = 5.0
    laplacian: str = "forward_laplacian"
    kinetic: str = "exact"  # exact (forward Laplacian) | split (Hutchinson for 1/2 log det)
    n_probes: int = 1  # kinetic = "split": Hutchinson probes per walker
    n_micro_batches: int = 1
    # Flow-gradient control variate E0(K) = sum of the occupied mode energies
    # (fermiflow.training.loss); unbiased, exact zero gradient at the ideal identity flow.
    control_variate: bool = False


@_frozen
class RunConfig:
    """Length, logging, checkpoints and guards of the run."""

    seed: int = 0
    n_steps: int = 200
    log_every: int = 1
    checkpoint_every: int = 50
    keep_checkpoints: int = 3
    n_eval_steps: int = 20
    pretrain_steps: int = 0
    pretrain_learning_rate: float = 1e-2
    pretrain_optimizer: str = "adam"  # adam | sr (natural gradient, no trust region)
    pretrain_batch: int | None = None  # default: sampler.batch
    max_rollbacks: int = 3
    memory_gb: float | None = None  # step memory budget per device: plans n_micro_batches
    learning_rate_backoff: float = 0.5


@_frozen
class Config:
    """A whole run."""

    system: SystemConfig = dataclasses.field(default_factory=SystemConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    sampler: SamplerConfig = dataclasses.field(default_factory=SamplerConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
