"""paperradar: self-hosted research-paper discovery."""

from __future__ import annotations

__version__ = "0.1.0"
