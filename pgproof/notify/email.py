"""E-mail over SMTP (stdlib smtplib): plain text, STARTTLS and login only when configured."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from pgproof.notify.config import Email
from pgproof.notify.message import Summary


def message(cfg: Email, s: Summary) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = s.headline()
    msg["From"] = cfg.from_
    msg["To"] = ", ".join(cfg.to)
    msg.set_content(s.text() + "\n")
    return msg


def send(cfg: Email, s: Summary, password: str | None) -> str:
    with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s) as smtp:
        if cfg.starttls:
            smtp.starttls(context=ssl.create_default_context(
                cafile=str(cfg.cafile) if cfg.cafile else None))
        if cfg.username:
            smtp.login(cfg.username, password or "")
        smtp.send_message(message(cfg, s))
    return f"email: sent to {len(cfg.to)} recipient(s)"
