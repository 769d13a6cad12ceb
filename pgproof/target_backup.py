"""A target's optional ``[backup]`` section: which backup tool holds its backups, and how to ask it.

The backup layer (BAK-1/2/3, ENC-2 on self-managed hosts) reads the tool's own
JSON info, run where the repository config lives: locally or on a testinfra host.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Backup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: Literal["pgbackrest"] = "pgbackrest"
    stanza: str = Field(min_length=1)
    # The tool's invocation before its arguments, e.g. "sudo -u postgres pgbackrest --config=/etc/pgbackrest.conf".
    command: str = "pgbackrest"
    host: str = "local://"  # where to run it: a testinfra URL (local://, ssh://db1, ...)
