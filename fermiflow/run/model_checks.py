"""Consistency of the model options with the system, sampler and optimizer of a config.

Called by :func:`fermiflow.run.config.resolve` before anything is traced: each
combination that cannot work raises one ``ValueError`` naming the keys and the fix.
"""

from __future__ import annotations

from fermiflow.run.schema import ModelConfig, OptimizerConfig, SamplerConfig

__all__ = ["check_model_options"]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_model_options(system_kind: str, model: ModelConfig, sampler: SamplerConfig,
                        opt: OptimizerConfig) -> None:
    """Raise ValueError for a model option that the rest of the config cannot serve.

    Args:
      system_kind: "electron_gas", "quantum_dot" or "classical".
      model: the [model] table.
      sampler: the [sampler] table.
      opt: the [optimizer] table.
    """
    if sampler.kind == "exact":
        _require(model.flow != "ode" and not model.spin_adapted,
                 "sampler.kind = 'exact' samples |D_K(T(x))|^2 |det J| with a residual-flow "
                 "inverse: it needs model.flow = 'backflow' or 'identity' and "
                 "model.spin_adapted = false; use sampler.kind = 'auto'.")
    for key, on, extra in (("parity_flows", model.parity_flows, model.spin_adapted),
                           ("momentum_flows", model.momentum_flows,
                            system_kind == "electron_gas")):
        _require(not on or (extra and sampler.kind in ("auto", "metropolis")
                            and opt.kinetic == "exact"),
                 f"model.{key} = true needs sampler.kind = 'auto' or 'metropolis', "
                 "optimizer.kinetic = 'exact' (the latent samplers and the split kinetic "
                 "energy use one flow) and " + ("model.spin_adapted = true." if key[0] == "p"
                                                else "a periodic box (electron_gas)."))
    _require((model.certify and not model.free_displacement) or (
        system_kind == "electron_gas" and model.flow == "backflow"
        and (model.certify or sampler.kind in ("auto", "metropolis"))),
        "model.certify = false and model.free_displacement = true need the box backflow; "
        "uncertified, sampler.kind must be 'auto' or 'metropolis' (the others invert T).")
    _require(model.pair_field >= 0 and (model.pair_field == 0 or (
        system_kind == "electron_gas" and model.flow == "backflow")),
        f"model.pair_field = {model.pair_field}: the Fourier pair layer is an order >= 0 of "
        "the box backflow; use it with system.kind = 'electron_gas' and model.flow = "
        "'backflow', or set model.pair_field = 0.")
    if model.flow == "ode":
        _require(opt.laplacian == "jvp_loop" and opt.kinetic == "exact"
                 and sampler.kind == "metropolis",
                 "model.flow = 'ode' needs optimizer.laplacian = 'jvp_loop', optimizer.kinetic "
                 "= 'exact' and sampler.kind = 'metropolis' (folx cannot trace the RK4 loop of "
                 "the ODE flow; the latent sampler is not tested with it).")
