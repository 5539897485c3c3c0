"""fermiflow.sampling: Metropolis chains over coordinates, exact K, device sharding."""

from fermiflow.sampling.dpp import (
    DPPSample,
    make_plane_wave_dpp_sampler,
    sample_plane_wave_dpp,
)
from fermiflow.sampling.dpp_trap import make_oscillator_dpp_sampler, sample_hermite_squared
from fermiflow.sampling.exact_latent import ExactLatentInfo, make_exact_latent_joint_sampler
from fermiflow.sampling.joint import (
    JointInfo,
    JointSampler,
    JointState,
    make_joint_sampler,
    make_joint_state,
)
from fermiflow.sampling.latent import LatentInfo, LatentState, make_latent_joint_sampler
from fermiflow.sampling.metropolis import (
    MetropolisInfo,
    MetropolisSampler,
    MetropolisState,
    adapt_width,
    default_width,
    make_metropolis,
)
from fermiflow.sampling.sharding import (
    WALKER_AXIS,
    place,
    replicate,
    shard_walkers,
    walker_mesh,
    walker_shardings,
)

__all__ = [
    "DPPSample",
    "ExactLatentInfo",
    "make_exact_latent_joint_sampler",
    "make_oscillator_dpp_sampler",
    "make_plane_wave_dpp_sampler",
    "sample_hermite_squared",
    "sample_plane_wave_dpp",
    "WALKER_AXIS",
    "JointInfo",
    "JointSampler",
    "JointState",
    "LatentInfo",
    "LatentState",
    "MetropolisInfo",
    "MetropolisSampler",
    "MetropolisState",
    "adapt_width",
    "default_width",
    "make_joint_sampler",
    "make_joint_state",
    "make_latent_joint_sampler",
    "make_metropolis",
    "place",
    "replicate",
    "shard_walkers",
    "walker_mesh",
    "walker_shardings",
]
