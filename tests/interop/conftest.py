"""NetKet interop needs the optional extra (pip install fermiflow[netket] or [test])."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("netket") else ["test_*.py"]
