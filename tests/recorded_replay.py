"""Replay responses recorded from the real clouds (tests/data/recorded/) through pgproof's probes.

AWS: the ``placebo`` library answers every boto3 call from a directory of
``<service>.<Operation>_<n>.json`` files (Cloud Custodian's format) before
anything is signed or sent, so the probe's own code runs on real shapes. A
call with no recording fails loudly (placebo's IOError), so a new describe
call in the probe needs a recording here. Azure: a requests adapter mounted in
the SDK's own transport answers ARM GETs from VCR cassettes; unmatched URLs
fail the test with the URL. The judges then run on the inventories as usual.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import placebo
import requests
import urllib3
from azure.core.pipeline.transport import RequestsTransport

from pgproof.probes.aws import AwsInventory, AwsProbe, _Ctx
from pgproof.probes.azure import AzureInventory, AzureProbe
from pgproof.probes.azure_sdk import Clients
from pgproof.target import Aws, Azure, Thresholds
from pgproof.verdict import CannotVerify, NotApplicable, Unreachable

DATA = Path(__file__).parent / "data" / "recorded"
AWS_COMMON = DATA / "aws" / "instance"
DB_INSTANCES = DATA / "aws" / "db-instances"


def aws_replay(tmp: Path, instance_file: Path, *, extra: Path | None = None, **cfg: Any) -> AwsInventory:
    """One inventory pass whose every AWS answer is a recorded response."""
    d = tmp / f"placebo-{instance_file.stem}"
    shutil.copytree(AWS_COMMON, d, dirs_exist_ok=True)
    if extra is not None:
        shutil.copytree(extra, d, dirs_exist_ok=True)
    shutil.copy(instance_file, d / "rds.DescribeDBInstances_1.json")
    first = json.loads(instance_file.read_text())["data"]["DBInstances"][0]
    aws = Aws.model_validate({"region": "us-east-1", "db_instance_id": first["DBInstanceIdentifier"],
                              **cfg})
    ctx = _Ctx(aws, 1.0, 1)
    placebo.attach(ctx.session, str(d)).playback()
    return AwsProbe(aws, workers=1, ctx=ctx).gather()


def verdicts(judges: Mapping[str, Callable[[Any, Thresholds], list[str]]], inv: Any,
             th: Thresholds | None = None) -> dict[str, tuple[str, str]]:
    """Each judge's verdict and its sentence(s); a crash is not caught (it fails the test)."""
    th = th or Thresholds()
    out: dict[str, tuple[str, str]] = {}
    for cid, judge in judges.items():
        try:
            problems = judge(inv, th)
            out[cid] = ("fail", " | ".join(problems)) if problems else ("pass", "")
        except CannotVerify as exc:
            out[cid] = ("cannot-verify", str(exc))
        except NotApplicable as exc:
            out[cid] = ("not-applicable", str(exc))
        except Unreachable as exc:
            out[cid] = ("error", str(exc))
    return out


class Cassettes(requests.adapters.BaseAdapter):
    """Answers GETs from recorded bodies: ``routes`` maps a URL-path regex to a body or status."""

    def __init__(self, routes: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.routes = [(re.compile(p, re.I), body) for p, body in routes]
        self.seen: list[str] = []
        self.unmatched: list[str] = []

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
        path = requests.utils.urlparse(request.url).path
        self.seen.append(f"{request.method} {path}")
        for rx, body in self.routes:
            if request.method == "GET" and rx.fullmatch(path):
                status, doc = body if isinstance(body, tuple) else (200, body)
                return self._response(request, status, doc)
        self.unmatched.append(f"{request.method} {request.url}")
        # No recording: 501 (an API the endpoint lacks); the test fails on ``unmatched``.
        return self._response(request, 501, {"error": {"code": "NoRecording", "message": path}})

    @staticmethod
    def _response(request: requests.PreparedRequest, status: int, doc: Any) -> requests.Response:
        body = json.dumps(doc).encode()
        resp = requests.Response()
        resp.request, resp.url, resp.status_code = request, request.url, status
        resp.headers["content-type"] = "application/json"
        resp.raw = urllib3.HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False,
                                        headers={"content-type": "application/json",
                                                 "content-length": str(len(body))})
        return resp

    def close(self) -> None:
        pass


def cassette_body(name: str, index: int = 0, item: int | None = None) -> Any:
    """The JSON body of a VCR interaction (Cloud Custodian stores it under body.data)."""
    doc = json.loads((DATA / "azure" / name).read_text())
    body = doc["interactions"][index]["response"]["body"]
    data = body.get("data")
    if data is None:
        data = json.loads(body.get("string") or "null")
    return data if item is None else data["value"][item]


def azure_replay(cfg: Azure, adapter: Cassettes) -> AzureInventory:
    """One Azure inventory pass through the pinned SDKs, every answer from ``adapter``."""
    session = requests.Session()
    session.mount("https://", adapter)
    transport = RequestsTransport(session=session, session_owner=False)
    probe = AzureProbe(cfg, workers=1, clients=Clients(cfg, transport=transport))
    return probe.gather()
