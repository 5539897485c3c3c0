"""fermiflow.sampling: Metropolis chains over coordinates, exact K, device sharding."""

from fermiflow.sampling.joint import (
    JointInfo,
    JointParams,
    JointSampler,
    JointState,
    make_joint_sampler,
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
    replicate,
    shard_walkers,
    walker_mesh,
)

__all__ = [
    "WALKER_AXIS",
    "JointInfo",
    "JointParams",
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
    "make_latent_joint_sampler",
    "make_metropolis",
    "replicate",
    "shard_walkers",
    "walker_mesh",
]
