"""Provenance of a result: versions, git commit and tree state, device, host load.

Written into run directories, checkpoints and benchmark result files.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import jax

__all__ = ["environment", "git_state", "versions"]

_PACKAGES = ("fermiflow", "jax", "jaxlib", "flax", "optax", "blackjax", "chex", "folx",
             "netket", "numpy", "scipy", "einops", "arviz")
_SOURCE = Path(__file__).resolve().parents[2]


def git_state() -> dict:
    """Return ``{"git_commit", "git_dirty"}`` of the checkout fermiflow runs from.

    ``git_dirty`` is True when tracked files differ from the commit (a result made then
    cannot be traced to a commit); both are None outside a git checkout.
    """
    def git(*args):
        return subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()

    try:
        return {"git_commit": git("rev-parse", "HEAD"),
                "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def versions() -> dict:
    """Return the versions of fermiflow and its dependencies, the git state and devices."""
    info: dict[str, Any] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    info.update(git_state())
    info["devices"] = [str(d) for d in jax.devices()]
    info["process_count"] = jax.process_count()
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def environment() -> dict:
    """Return :func:`versions` plus the device, host, load average and date (UTC)."""
    device = jax.devices()[0]
    return {
        **versions(),
        "device_kind": device.device_kind,
        "platform": device.platform,
        "n_devices": jax.device_count(),
        "cpu_model": _cpu_model() if device.platform == "cpu" else None,
        "os_cpu_count": os.cpu_count(),
        "load_average_1_5_15min": list(os.getloadavg()),
        "hostname": platform.node(),
        "x64": bool(jax.config.jax_enable_x64),
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
