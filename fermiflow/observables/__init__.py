"""fermiflow.observables."""

__all__: list[str] = []
