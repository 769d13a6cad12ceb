"""Credential literals in a source tree (DSNs with a password, password assignments)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pgproof.verdict import NotApplicable

DSN = re.compile(r"postgres(?:ql)?://[^:/@\s'\"]+:([^@\s'\"$<{]{3,})@")
ASSIGN = re.compile(r"""(?i)\b(?:db_?)?pass(?:word|wd)?\s*[:=]\s*['"]([^'"$<{]{6,})['"]""")
SKIP_DIRS = {".git", "node_modules", ".venv", "__pycache__", "vendor"}
MAX_BYTES = 1_000_000


@dataclass
class Literal:
    path: str
    line: int
    kind: str


def scan(tree: Path | None) -> list[Literal]:
    """Locations only: the matched secret itself is never kept."""
    if tree is None:
        raise NotApplicable("no source_tree configured for this target")
    found = []
    for p in sorted(tree.rglob("*")):
        if not p.is_file() or SKIP_DIRS & set(p.parts) or p.stat().st_size > MAX_BYTES:
            continue
        try:
            text = p.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if DSN.search(line):
                found.append(Literal(str(p.relative_to(tree)), n, "DSN with password"))
            elif ASSIGN.search(line):
                found.append(Literal(str(p.relative_to(tree)), n, "password literal"))
    return found
