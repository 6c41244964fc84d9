"""Where a bench run's figures come from besides code, data and seed: the machine's kernels and the source revision.

Kept apart from the runner: it reads the machine (``/proc/cpuinfo``, PyTorch's build) and git, nothing of the bench.
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

__all__ = ["numerics", "source_revision"]


#: Environment variables that steer which floating-point kernels MKL, oneDNN and PyTorch run (recorded when set).
_NUMERICS_ENV = (
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def _cpu_model() -> str:
    """The CPU's model name, family, model and stepping (Linux ``/proc/cpuinfo``; else :func:`platform.processor`).

    Virtual machines often report a bare ``AMD EPYC``; family / model / stepping tell the generations apart.
    """
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    name = fields.get("model name", platform.processor() or "unknown")
    family, model, stepping = (fields.get(k, "?") for k in ("cpu family", "model", "stepping"))
    return f"{name} (family {family}, model {model}, stepping {stepping})"


def numerics() -> dict[str, Any]:
    """What decides the figures besides the code, the data and the seed: the CPU and the kernels PyTorch runs on it.

    A run is bit-for-bit repeatable on one machine, but MKL and PyTorch pick their matrix and vector kernels by
    CPU, and kernels that sum in another order round differently; forty epochs of training turn the last-bit
    differences into different weights and test figures (docs/benchmarks.md, *Reproducibility*). Two runs can
    only be expected to agree exactly when these entries match.
    """
    import torch

    blas = next((ln.strip(" -") for ln in torch.__config__.show().splitlines() if "Math Kernel Library" in ln), "")
    return {
        "cpu_model": _cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": blas or "not MKL",
        "env": {name: os.environ[name] for name in _NUMERICS_ENV if name in os.environ},
    }


def source_revision() -> dict[str, Any]:
    """The git commit of the imported mamori and the tracked source files that differ from it (None: not in git).

    A bench run imports whatever is in the working tree, so a run labelled with a commit can carry uncommitted
    edits; ``modified`` names them.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../mamori
    try:
        # An installed copy inside some other repository (e.g. a virtualenv in a checkout) is not that commit's code.
        subprocess.run(
            ["git", "-C", package, "ls-files", "--error-unmatch", "__init__.py"],
            capture_output=True,
            timeout=10,
            check=True,
        )
        commit = subprocess.run(
            ["git", "-C", package, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", package, "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "modified": None}
    return {"commit": commit, "modified": sorted(line[3:] for line in status.splitlines() if line.strip())}
