"""``[targets.X.notify]``: which channels, and when. Only the *names* of secret env vars live here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class Email(_Strict):
    """SMTP delivery (stdlib smtplib); STARTTLS and login are optional."""

    host: str
    port: int = Field(25, ge=1, le=65535)
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    starttls: bool = False
    cafile: Path | None = None  # CA bundle for STARTTLS to a relay with a private CA
    username: str | None = None
    password_env: str | None = None  # the SMTP password's env var, when username is set
    timeout_s: float = Field(10, gt=0)

    @field_validator("cafile", mode="before")
    @classmethod
    def _relative_to_config(cls, value: Any, info: ValidationInfo) -> Any:
        """Like every path in a config: relative to that file (target.py passes its directory)."""
        base = (info.context or {}).get("base")
        if isinstance(value, str) and base is not None and not Path(value).is_absolute():
            return Path(base) / value
        return value

    @model_validator(mode="after")
    def _password_has_a_source(self) -> Email:
        if self.username and not self.password_env:
            raise ValueError("email.username needs email.password_env (the password's "
                             "environment variable; never the password itself)")
        return self


class Notify(_Strict):
    """``on``: ``non-compliant`` (default) notifies when a check fails, errs or drifts, and once
    when it is compliant again; ``change`` only when the outcome differs from the previous
    check (drift, or compliance changed); ``always`` after every check."""

    on: Literal["non-compliant", "change", "always"] = "non-compliant"
    slack_webhook_env: str | None = None
    pagerduty_routing_key_env: str | None = None
    pagerduty_url: str = PAGERDUTY_EVENTS_URL  # an Events API v2 endpoint; tests point it at loopback
    email: Email | None = None
    report_url: str | None = None  # where reports/ is published; else the local path is sent
    timeout_s: float = Field(10, gt=0)

    def env_names(self) -> list[str]:
        """Every environment variable this section needs set before a run may notify."""
        names = [self.slack_webhook_env, self.pagerduty_routing_key_env]
        if self.email is not None and self.email.username:
            names.append(self.email.password_env)
        return [n for n in names if n]
