"""What every table of a target config shares: strictness, paths relative to the file, CA checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo


def relative_to_config(value: Any, info: ValidationInfo) -> Any:
    """A relative path in a config file means relative to that file, not to the current directory."""
    base = (info.context or {}).get("base")
    if isinstance(value, str | Path) and base is not None and not Path(value).is_absolute():
        return Path(base) / Path(value).expanduser()
    return value


def is_ca_file(path: Path) -> str | None:
    """Why ``path`` cannot serve as a CA bundle (None: it holds at least one PEM certificate)."""
    from cryptography import x509

    if not path.is_file():
        return f"sslrootcert file not found: {path}"
    try:
        x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return (f"sslrootcert {path} is not a PEM certificate file (no readable "
                "'-----BEGIN CERTIFICATE-----' block): point it at the CA certificate")
    return None


class Strict(BaseModel):
    """Every config table: unknown keys are errors, values are frozen once read, and no number is
    ``inf`` or ``nan`` (TOML allows both; a budget of ``inf`` would make a control unfailable)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
