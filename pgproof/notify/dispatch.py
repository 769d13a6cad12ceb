"""Decide whether to notify, then try every configured channel; a failed one is one warning line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from pgproof.errors import UserError
from pgproof.notify.config import Notify
from pgproof.notify.http import DeliveryError
from pgproof.notify.message import Summary, should_notify, summarize


def require_env(cfg: Notify, target: str, environ: Mapping[str, str] = os.environ) -> None:
    """Before the run: every env var the section names must be set (bad input, exit 2)."""
    missing = [n for n in cfg.env_names() if not environ.get(n)]
    if missing:
        raise UserError(f"--notify: environment variable {missing[0]} (named in "
                        f"[targets.{target}.notify]) is not set")


def notify_run(cfg: Notify, run_dir: Path, environ: Mapping[str, str] = os.environ,
               warn: Callable[[str], None] | None = None) -> list[str]:
    """Send the run's summary where configured; returns what was delivered, warns on the rest."""
    warn = warn or (lambda m: print(m, file=sys.stderr))
    try:
        s = summarize(run_dir, cfg.report_url)
    except (OSError, ValueError, KeyError) as exc:
        warn(f"pgproof: notify: no summary to send ({type(exc).__name__}: {exc})")
        return []
    if not should_notify(s, cfg.on):
        return [f"notify: nothing to say ({s.state}, no drift; on = {cfg.on!r})"]
    return send_all(cfg, s, environ, warn)


def send_all(cfg: Notify, s: Summary, environ: Mapping[str, str],
             warn: Callable[[str], None]) -> list[str]:
    from pgproof.notify import email, pagerduty, slack

    secrets = [environ.get(n, "") for n in cfg.env_names()]
    jobs: list[tuple[str, Callable[[], str]]] = []
    if cfg.slack_webhook_env:
        url = environ.get(cfg.slack_webhook_env, "")
        jobs.append(("slack", lambda: slack.send(url, s, cfg.timeout_s)))
    if cfg.pagerduty_routing_key_env:
        key = environ.get(cfg.pagerduty_routing_key_env, "")
        jobs.append(("pagerduty", lambda: pagerduty.send(cfg.pagerduty_url, key, s, cfg.timeout_s)))
    if cfg.email is not None:
        mail = cfg.email
        pw = environ.get(mail.password_env) if mail.password_env else None
        jobs.append(("email", lambda: email.send(mail, s, pw)))
    done = []
    for name, job in jobs:
        try:
            done.append(job())
        except Exception as exc:  # noqa: BLE001 - a receiver's failure never fails the run
            why = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            why = " ".join(why.split())  # one line, whatever the receiver said
            for secret in secrets:
                if secret:
                    why = why.replace(secret, "********")
            warn(f"pgproof: notify {name}: not delivered ({why})")
    return done
