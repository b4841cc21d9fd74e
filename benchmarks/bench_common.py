"""Shared helpers of the benchmark scripts: machine description, percentiles, RSS.

Example:

```python
from bench_common import machine_info, percentiles_ms
info = machine_info()          # {"cpu": "AMD EPYC", "cores": 2, "versions": {...}, ...}
percentiles_ms([0.001, 0.002])  # {"p50_ms": 1.5, "p99_ms": 1.99}
```
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from importlib import metadata

PACKAGES = (
    "tfrec",
    "tensorflow",
    "keras",
    "keras-hub",
    "tensorflow-text",
    "numpy",
    "torch",
    "sentence-transformers",
    "transformers",
    "grpcio",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The vector-unit flags that matter here (AVX-512, bf16, VNNI)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return sorted(
                        f
                        for f in flags
                        if f.startswith(("avx512_bf16", "avx512_vnni", "avx512f", "amx", "avx2", "avx_vnni"))
                    )
    except OSError:
        pass
    return []


#: The vector-unit features the benchmark table reports as present or absent (`amx`: any `amx_*` flag).
CHECKED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx")


def cpu_flags_checked(flags=None) -> dict:
    """`{"avx2": True, "avx512f": False, ...}` for `CHECKED_FLAGS`, from `/proc/cpuinfo` (or `flags` given).

    Unlike `cpu_flags()`, an absent feature is recorded too (`False`), so a
    table can say "no AVX-512" rather than leave it to be inferred.
    """
    if flags is None:
        flags = []
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("flags"):
                        flags = line.split(":", 1)[1].split()
                        break
        except OSError:
            pass
    present = set(flags)
    return {
        name: any(f.startswith("amx") for f in present) if name == "amx" else name in present for name in CHECKED_FLAGS
    }


def lscpu_model() -> str | None:
    """`Model name` as `lscpu` prints it (None without lscpu)."""
    import shutil
    import subprocess

    if shutil.which("lscpu") is None:
        return None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.strip().startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def machine_info() -> dict:
    """CPU model, cores, memory, load average and package versions of this run."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        pages = 0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "cpu_flags_checked": cpu_flags_checked(),
        "lscpu_model": lscpu_model(),
        "memory_gb": round(pages / 1e9, 1),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(),
    }


def percentiles_ms(seconds) -> dict:
    """p50/p90/p99 of a list of durations in seconds, as milliseconds."""
    import numpy as np

    values = np.asarray(list(seconds), dtype=float)
    if not len(values):
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99]) * 1000
    return {"p50_ms": round(float(p50), 3), "p90_ms": round(float(p90), 3), "p99_ms": round(float(p99), 3)}


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc; else peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def emit(result: dict, out: str | None = None) -> None:
    """Prints `result` as JSON and writes it to `out` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text)
