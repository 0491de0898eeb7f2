"""What the benchmarks share: a one-line description of the machine they ran on (CPU model,
cores, memory, Python, load average — the figures mean little without it), the keyword query
workload of the scale benchmarks, and the synthetic corpus file they ingest."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

KEYWORD_QUERIES = [
    "graph neural network",
    "diffusion models",
    "protein folding",
    "reinforcement learning policy",
    "bayesian inference",
    "language model alignment",
    "cancer cells",
    "optimal transport",
    "quantum error correction",
    "contrastive learning images",
    "attention mechanism",
    "gene expression",
    "stochastic gradient descent convergence",
    "robot navigation",
]


def describe_host() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}{load}"


def make_corpus_file(n: int, path: Path) -> Path:
    """``path``: a synthetic corpus of ``n`` papers by ``make_corpus.py`` (made once)."""
    if not path.exists():
        script = Path(__file__).with_name("make_corpus.py")
        subprocess.run([sys.executable, str(script), str(n), "-o", str(path)], check=True)
    return path
