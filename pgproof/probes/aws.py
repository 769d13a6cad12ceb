"""One read-only pass of AWS describe calls -> ``AwsInventory`` (plain facts, no verdicts).

Why one pass: the suites ask many questions of the same few resources, and a
nightly run against a real account must stay cheap and inside API limits. The
calls that only need the primary's description run concurrently; throttling
is retried by botocore (adaptive mode). What the target cannot show is
recorded in ``missing`` so judges can say "cannot verify" instead of guessing.
Records are kept as AWS returns them, so an absent field stays absent.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from botocore.parsers import ResponseParserError

from pgproof import pools
from pgproof.probes import aws_calls as calls

# The inventory and its helpers live in aws_inventory (aws_calls reads them too); re-exported
# here, where the checks and the fleet probe import them from.
from pgproof.probes.aws_inventory import (  # noqa: F401
    DENIED,
    AwsInventory,
    _code,
    _not_implemented,
    _optional,
    _pages,
    password_length,
)
from pgproof.target import Aws
from pgproof.target_timeouts import Timeouts
from pgproof.verdict import Unreachable

# Parsed service models, shared by every gather: building clients is ~10x faster.
_LOADER = botocore.loaders.create_loader()


def session(profile: str | None, region: str, credentials_file: Path | None = None) -> boto3.Session:
    """A fresh session (own credentials chain) that reuses the parsed service models."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    if credentials_file is not None:
        core.set_config_variable("credentials_file", str(credentials_file))
    return boto3.Session(botocore_session=core, profile_name=profile, region_name=region)


class _Ctx:
    """Clients made on demand under a lock (boto3 sessions are not thread-safe)."""

    def __init__(self, cfg: Aws, connect_timeout: float, max_attempts: int,
                 read_timeout: float | None = None) -> None:
        self.cfg = cfg
        self.session = session(cfg.profile, cfg.region, cfg.credentials_file)
        self.endpoint = (cfg.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
                         or f"https://rds.{cfg.region}.amazonaws.com")
        self._kw: dict[str, Any] = {"endpoint_url": cfg.endpoint_url} if cfg.endpoint_url else {}
        read = max(10.0, connect_timeout) if read_timeout is None else read_timeout
        timeouts = {"connect_timeout": connect_timeout, "read_timeout": read,
                    "max_pool_connections": 16}
        self._retrying = Config(retries={"mode": "adaptive", "max_attempts": max_attempts}, **timeouts)
        # Capability probes (APIs an emulator may lack) get one try: a 500 is an answer.
        self._once = Config(retries={"mode": "standard", "max_attempts": 1}, **timeouts)
        self._clients: dict[tuple[str, str, bool], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None, once: bool = False) -> Any:
        key = (service, region or self.cfg.region, once)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.session.client(
                    service, region_name=key[1], config=self._once if once else self._retrying,
                    **self._kw)
            return self._clients[key]

    def unreachable(self, exc: Exception, what: str) -> Unreachable:
        where = f"AWS endpoint {self.endpoint} (region {self.cfg.region})"
        if isinstance(exc, ProfileNotFound):
            return Unreachable(f"{where}: AWS profile {self.cfg.profile!r} is not in the shared "
                               f"config or credentials files, so {what} could not be made.")
        if isinstance(exc, NoCredentialsError):
            return Unreachable(f"{where}: no AWS credentials found for {what} "
                               f"(profile {self.cfg.profile or 'default chain'}).")
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code, msg = str(err.get("Code")), str(err.get("Message", ""))
            inner = re.search(r"<Code>(.*?)</Code>.*?<Message>(.*?)</Message>", msg, re.S)
            if inner:  # an XML error body under a JSON protocol (seen from emulators)
                code, msg = inner[1], inner[2]
            return Unreachable(f"{where} refused {what}: {code} ({msg.strip()[:200]}).")
        return Unreachable(f"{where} could not be reached for {what}: {exc}")


class AwsProbe:
    """Inventory passes over one target; clients are kept between passes (schedulers poll)."""

    def __init__(self, aws_cfg: Aws, *, connect_timeout: float = 5.0, max_attempts: int = 6,
                 workers: int = 8, ctx: Any = None, read_timeout: float | None = None) -> None:
        self.cfg = aws_cfg
        self.workers = workers
        # ``ctx``: a fleet shares one region's clients among its databases (aws_fleet._DbCtx).
        self._ctx = ctx or _Ctx(aws_cfg, connect_timeout, max_attempts, read_timeout)

    def gather(self) -> AwsInventory:
        """Describe the deployment; raise ``Unreachable`` if AWS cannot be asked."""
        cfg, ctx = self.cfg, self._ctx
        inv = AwsInventory(region=cfg.region, endpoint=ctx.endpoint,
                           proxy_configured=cfg.db_proxy_name is not None,
                           app_security_group_ids=list(cfg.app_security_group_ids),
                           bucket_name=cfg.backup_bucket)
        stage = "the first call"
        try:
            calls.primary(ctx, inv)
            stage = "during the inventory pass"
            tasks = calls.first_wave(ctx, inv)
            with pools.threads(self.workers) as pool:
                for fut in [pool.submit(t) for t in tasks]:
                    fut.result()
        except Unreachable:
            raise
        except (ClientError, BotoCoreError, ResponseParserError, NotImplementedError) as exc:
            first = "DescribeDBInstances" if stage == "the first call" else "a describe call"
            op = getattr(exc, "operation_name", None) or first
            raise ctx.unreachable(exc, f"{op} ({stage})") from None
        return inv


def gather(aws_cfg: Aws, *, connect_timeout: float = 5.0, max_attempts: int = 6,
           workers: int = 8, read_timeout: float | None = None) -> AwsInventory:
    """One inventory pass over the deployment named by ``aws_cfg`` (see ``AwsProbe``)."""
    return AwsProbe(aws_cfg, connect_timeout=connect_timeout, max_attempts=max_attempts,
                    workers=workers, read_timeout=read_timeout).gather()


def limits(t: Timeouts) -> dict[str, Any]:
    """botocore's per-attempt connect/read timeouts and attempts from ``[timeouts]``."""
    return {"connect_timeout": t.sdk_connect_s, "read_timeout": t.sdk_read_s,
            "max_attempts": t.sdk_attempts}
