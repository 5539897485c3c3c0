"""Doctests of fermiflow.interop import netket, the optional extra: skip them without it."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("netket") else ["fermiflow/interop/*"]
