"""check --notify: Slack, PagerDuty and SMTP receivers started here, on free loopback ports.

The receivers are real servers (http.server, aiosmtpd with STARTTLS and AUTH); the
runs are written by the real results/history code, and once by `pgproof check`
against the lab. Every test also asserts that no secret (webhook token, routing
key, SMTP password) shows in a message it should not be in, or in a warning.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from labcli import lab_target_as

from pgproof.catalogue.registry import of_kind
from pgproof.lab.state import LabState
from pgproof.notify.config import Email, Notify
from pgproof.notify.dispatch import notify_run
from pgproof.report import results as res
from pgproof.verdict import Verdict as V

REPO = Path(__file__).resolve().parent.parent
HOOK_TOKEN = "T0KEN-hooks-9f8e7d6c5b4a"  # stands for the secret part of a Slack webhook URL
ROUTING_KEY = "R0UTING-key-0123456789abcdef"
SMTP_PASSWORD = "smtp-Pa55word-xyz"


class Receiver:
    """An HTTP server capturing every POST (path, JSON body) and answering ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts.append((self.path, json.loads(body or b"null")))
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (it is its own CA) and its key."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pgproof test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp / "smtp.crt", tmp / "smtp.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


class Smtp:
    """aiosmtpd on a free port: STARTTLS required, AUTH LOGIN/PLAIN checked against SMTP_PASSWORD."""

    def __init__(self, tmp: Path) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[str] = []
        self.logins: list[tuple[bytes, bytes]] = []
        crt, key = _self_signed(tmp)
        self.cafile = crt
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(crt, key)
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                outer.messages.append(envelope.content.decode("utf-8", "replace"))
                return "250 OK"

        def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            outer.logins.append((data.login, data.password))
            return AuthResult(success=data.password == SMTP_PASSWORD.encode())

        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, tls_context=tls,
                                     require_starttls=True, authenticator=auth, auth_require_tls=True,
                                     ready_timeout=60)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[tuple[Receiver, Receiver, Smtp]]:
    slack, pd, smtp = Receiver(200), Receiver(202), Smtp(tmp_path)
    yield slack, pd, smtp
    slack.close()
    pd.close()
    smtp.close()


def _run(base: Path, verdicts: dict[str, str], target: str = "staging") -> Path:
    """One check run through the real aggregate/write code."""
    d = res.run_dir(base, target)
    controls = res.aggregate([res.CheckResult(f"t::{c}", [c], V(v), f"saw {v}") for c, v in verdicts.items()],
                             of_kind("compliance"))
    res.write(d, target, controls, {})
    (d / "summary.html").write_text("<html><body>summary</body></html>")
    return d


def _config(slack: Receiver, pd: Receiver, smtp: Smtp, on: str = "non-compliant") -> tuple[Notify, dict[str, str]]:
    cfg = Notify(on=on, slack_webhook_env="T_SLACK", pagerduty_routing_key_env="T_PD",
                 pagerduty_url=pd.url("/v2/enqueue"),
                 email=Email(host="127.0.0.1", port=smtp.port, **{"from": "pgproof@example.test"},
                             to=["dba@example.test", "oncall@example.test"], starttls=True,
                             cafile=smtp.cafile, username="pgproof", password_env="T_SMTP_PW", timeout_s=30),
                 timeout_s=30)
    env = {"T_SLACK": slack.url(f"/services/{HOOK_TOKEN}"), "T_PD": ROUTING_KEY, "T_SMTP_PW": SMTP_PASSWORD}
    return cfg, env


def _no_secret(*texts: str) -> None:
    for t in texts:
        for secret in (HOOK_TOKEN, ROUTING_KEY, SMTP_PASSWORD):
            assert secret not in t, f"a secret leaked into: {t[:200]}"


def test_non_compliance_drift_and_recovery_reach_every_channel(tmp_path: Path, receivers: Any) -> None:
    slack, pd, smtp = receivers
    cfg, env = _config(slack, pd, smtp)
    ids = of_kind("compliance")
    healthy = {c: "pass" for c in ids}
    warnings: list[str] = []
    first = _run(tmp_path, healthy)
    assert notify_run(cfg, first, env, warnings.append) == [
        "notify: nothing to say (compliant, no drift; on = 'non-compliant')"]
    assert not slack.posts and not pd.posts and not smtp.messages

    broken = _run(tmp_path, {**healthy, "TLS-1": "fail", "BAK-1": "error"})
    sent = notify_run(cfg, broken, env, warnings.append)
    assert warnings == [] and len(sent) == 3, sent
    (path, body), = slack.posts
    assert path == f"/services/{HOOK_TOKEN}"  # the webhook URL came from the env var
    text = body["text"]
    assert f"staging is NON-COMPLIANT, run {broken.name}" in text
    assert "TLS-1 fail (" in text and "BAK-1 error (" in text
    assert "Drift since the previous check: TLS-1 pass -> fail, BAK-1 pass -> error" in text
    assert str(broken / "summary.html") in text and "saw fail" not in text  # no evidence
    (path, event), = pd.posts
    assert path == "/v2/enqueue" and event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger" and event["dedup_key"] == "pgproof/staging/compliance"
    assert event["payload"]["severity"] == "error" and event["payload"]["source"] == "pgproof:staging"
    assert event["payload"]["custom_details"]["not_compliant"] == {"TLS-1": "fail", "BAK-1": "error"}
    (mail,) = smtp.messages
    assert smtp.logins == [(b"pgproof", SMTP_PASSWORD.encode())]  # after STARTTLS (required)
    assert "Subject: pgproof: staging is NON-COMPLIANT" in mail and "TLS-1 fail" in mail
    assert "To: dba@example.test, oncall@example.test" in mail
    _no_secret(text, mail, json.dumps(event["payload"]))

    again = _run(tmp_path, healthy)
    notify_run(cfg, again, env, warnings.append)
    assert len(slack.posts) == 2 and "staging is compliant again" in slack.posts[-1][1]["text"]
    assert pd.posts[-1][1] == {"routing_key": ROUTING_KEY, "event_action": "resolve",
                               "dedup_key": "pgproof/staging/compliance"}
    quiet = _run(tmp_path, healthy)  # compliant twice: nothing new to say
    notify_run(cfg, quiet, env, warnings.append)
    assert (len(slack.posts), len(pd.posts), len(smtp.messages)) == (2, 2, 2) and warnings == []


def test_change_policy_stays_quiet_while_the_failure_repeats(tmp_path: Path, receivers: Any) -> None:
    slack, pd, smtp = receivers
    cfg, env = _config(slack, pd, smtp, on="change")
    failing = {**{c: "pass" for c in of_kind("compliance")}, "NET-1": "fail"}
    for _ in range(3):
        notify_run(cfg, _run(tmp_path, failing), env)
    assert len(slack.posts) == 1  # the first non-compliant run only; always would send 3
    cfg_always = cfg.model_copy(update={"on": "always"})
    notify_run(cfg_always, _run(tmp_path, failing), env)
    assert len(slack.posts) == 2


def test_a_failing_receiver_is_one_warning_line_and_no_secret(tmp_path: Path, receivers: Any) -> None:
    slack, _, _ = receivers
    slack.status = 500
    closed = _free_port()  # nothing listens there: connection refused
    cfg = Notify(slack_webhook_env="T_SLACK", pagerduty_routing_key_env="T_PD",
                 pagerduty_url=f"http://127.0.0.1:{closed}/v2/enqueue",
                 email=Email(host="127.0.0.1", port=closed, **{"from": "a@example.test"}, to=["b@example.test"]))
    env = {"T_SLACK": slack.url(f"/services/{HOOK_TOKEN}"), "T_PD": ROUTING_KEY}
    warnings: list[str] = []
    d = _run(tmp_path, {c: "fail" for c in of_kind("compliance")})
    assert notify_run(cfg, d, env, warnings.append) == []
    assert len(slack.posts) == 1  # it was tried
    assert [w.split(":")[1].strip() for w in warnings] == ["notify slack", "notify pagerduty", "notify email"]
    assert "HTTP 500" in warnings[0] and "refused" in warnings[1].lower()
    assert all("\n" not in w for w in warnings)
    _no_secret(*warnings)


def _lab_config(lab: LabState, path: Path, strict: bool, recv: Receiver, pd: Receiver) -> Path:
    """The lab as a configured target `labnotify`, with a [notify] section pointing at our receivers."""
    # strict: the lab's certificates live a year, not 300 years: TLS-4 fails, read-only
    notify = {"slack_webhook_env": "T_SLACK", "pagerduty_routing_key_env": "T_PD",
              "pagerduty_url": pd.url("/v2/enqueue")}
    path.write_text(lab_target_as(lab, "labnotify", thresholds={"cert_min_days": 100000} if strict
                                  else None, notify=notify))
    return path


def _check(tmp: Path, cfg: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", "labnotify",
                           "--config", str(cfg), "--reports", str(tmp / "reports"), "--control", "TLS-4",
                           *extra], capture_output=True, text=True, timeout=600, cwd=tmp,
                          env={**os.environ, **env})


@pytest.mark.lab
def test_pgproof_check_notify_against_the_lab(lab: LabState, tmp_path: Path) -> None:
    slack, pd = Receiver(200), Receiver(202)
    try:
        env = {"T_SLACK": slack.url(f"/services/{HOOK_TOKEN}"), "T_PD": ROUTING_KEY}
        strict = _lab_config(lab, tmp_path / "strict.toml", True, slack, pd)
        bare = tmp_path / "bare.toml"
        bare.write_text(lab_target_as(lab, "labnotify", thresholds={"cert_min_days": 100000}))
        r = _check(tmp_path, bare, env, "--notify")  # no [notify]: one sentence, nothing written
        assert r.returncode == 2 and "has no [targets.labnotify.notify] section" in r.stderr
        r = _check(tmp_path, strict, {"T_PD": ROUTING_KEY}, "--notify")
        assert r.returncode == 2 and "environment variable T_SLACK" in r.stderr
        assert not (tmp_path / "reports").exists()

        pd.status = 500  # PagerDuty breaks: one warning line, Slack still told, exit code the run's
        r = _check(tmp_path, strict, env, "--notify")
        assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
        text = slack.posts[-1][1]["text"]
        assert "labnotify is NON-COMPLIANT (partial run)" in text and "TLS-4 fail" in text
        assert pd.posts[-1][1]["event_action"] == "trigger"  # tried
        lines = [line for line in r.stderr.splitlines() if "notify" in line]
        assert lines == ["pgproof: notify pagerduty: not delivered (HTTP 500 Internal Server Error)"]
        assert "Traceback" not in r.stderr and "slack: posted" in r.stdout
        _no_secret(text, r.stdout, r.stderr)

        pd.status = 202
        ok = _lab_config(lab, tmp_path / "ok.toml", False, slack, pd)
        r = _check(tmp_path, ok, env, "--notify")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        text = slack.posts[-1][1]["text"]
        latest = (tmp_path / "reports" / "latest-check").resolve()
        now = {c["id"]: c["verdict"] for c in json.loads((latest / "results.json").read_text())["controls"]}
        assert f"labnotify is compliant again (partial run), run {latest.name}" in text
        assert f"Drift since the previous check: TLS-4 fail -> {now['TLS-4']}" in text  # moto: cannot-verify
        assert pd.posts[-1][1]["event_action"] == "resolve"
        assert (tmp_path / "reports" / "index.html").is_file()
    finally:
        slack.close()
        pd.close()
