"""Writing reports so a full disk, a read-only mount or a bad path never leaves half a file.

Every report file is written to a temporary name beside it and renamed into place
(``os.replace`` is atomic on one filesystem), so a reader sees the old file or the
whole new one, never a truncated JSON. A filesystem error becomes ``DiskError``:
one sentence naming the path and the errno, which the CLI prints with exit 2.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any

from pgproof.errors import UserError

# The links a reports folder holds; each must be pgproof's symlink, never a user's directory.
LINKS = ("latest", "latest-check", "latest-gameday")


class DiskError(UserError):
    """A filesystem refused a write (ENOSPC, EROFS, EACCES, ...): bad input, exit 2."""


def describe(exc: OSError, doing: str = "write") -> str:
    """``cannot write reports/x.json: No space left on device (ENOSPC)``: path and errno, one line."""
    code = errno.errorcode.get(exc.errno or 0, "")
    why = exc.strerror or str(exc) or type(exc).__name__
    where = f" {exc.filename}" if exc.filename is not None else ""
    if exc.filename2 is not None:
        where += f" -> {exc.filename2}"
    return f"cannot {doing}{where}: {why}" + (f" ({code})" if code else "")


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``path`` whole or not at all: a temp file in the same directory, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.filename is None or Path(exc.filename) == tmp:  # name the file the user knows
            exc.filename = str(path)
        raise DiskError(describe(exc)) from exc
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(path, text.encode(encoding))


def json_text(doc: Any, depth: int) -> str:
    """JSON indented by two spaces for its outer ``depth`` levels, each deeper value on one line.

    Why: ``json.dumps(indent=...)`` runs the pure-Python encoder (the C one only writes compact
    JSON), ~1 s per 5,000 fleet findings on a loaded machine; this keeps a person's view (one
    check, finding or result per line) at the C encoder's speed. Same data as ``json.loads`` sees."""
    return _json(doc, depth, "")


def _json(v: Any, depth: int, pad: str) -> str:
    if depth <= 0 or not isinstance(v, dict | list) or not v:
        return json.dumps(v)
    inner = pad + "  "
    if isinstance(v, dict):
        items = [f"{inner}{json.dumps(str(k))}: {_json(x, depth - 1, inner)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    return "[\n" + ",\n".join(f"{inner}{_json(x, depth - 1, inner)}" for x in v) + f"\n{pad}]"


def append_line(path: Path, line: str) -> None:
    """Append one line whole or not at all (a torn line would corrupt ``history.jsonl``)."""
    data = (line if line.endswith("\n") else line + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DiskError(describe(exc)) from exc
    try:
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            exc.filename = exc.filename or str(path)
            raise DiskError(describe(exc)) from exc
    finally:
        os.close(fd)


def prepare_reports(base: Path) -> Path:
    """The reports folder, created and proven writable before anything runs (bad input: exit 2).

    ``--reports`` naming a file, a read-only or full filesystem, or a ``latest`` link that a
    user replaced with a directory would otherwise fail with a traceback after the run."""
    base = base.expanduser().resolve()
    if base.exists() and not base.is_dir():
        raise DiskError(f"--reports {base} is a file, not a directory: name a directory "
                        "(it is created if missing)")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DiskError(describe(exc, "create the reports directory")) from exc
    for name in LINKS:
        link = base / name
        if os.path.lexists(link) and not link.is_symlink():
            kind = "a directory" if link.is_dir() else "a file"
            raise DiskError(f"{link} is {kind}, not pgproof's link to the newest run: move it "
                            "away (pgproof replaces it after every run)")
    probe = base / f".pgproof-write-test.{os.getpid()}"
    try:
        write_bytes(probe, b"pgproof checks that it can write here\n")
    except DiskError as exc:
        raise DiskError(f"reports directory is not writable: {exc}") from exc.__cause__
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return base
