"""fermiflow.models."""

__all__: list[str] = []
