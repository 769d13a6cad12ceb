"""Where the folders users read live: ``suites/``, ``scenarios/``, ``locustfiles/``.

In this repository they sit at the top level; in a wheel they ship as the packages
``pgproof.suites``, ``pgproof.scenarios`` and ``pgproof.locustfiles`` (pyproject's
``package-dir``). Resolved through the import system, so ``pip install``/``pipx install``
of the wheel runs anywhere, never through a path relative to this file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

FOLDERS = ("suites", "scenarios", "locustfiles")


def folder(name: str) -> Path:
    """The directory of shipped folder ``name`` (one of FOLDERS), installed or checked out."""
    if name not in FOLDERS:
        raise ValueError(f"not a shipped folder: {name!r}")
    return Path(str(resources.files(f"pgproof.{name}")))
