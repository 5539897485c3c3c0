"""fermiflow.hamiltonians."""

__all__: list[str] = []
