"""The AWS inventory starts in the background when the selected checks need it; its answer or
error is still the checks' (the fixture waits for it), so an unreachable AWS endpoint stays an
error with its sentence, never a pass or a fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pgproof import pools, procs

PGPROOF = Path(sys.executable).parent / "pgproof"


def test_background_hands_over_result_or_error() -> None:
    started = threading.Event()

    def work() -> int:
        started.set()
        return 7

    fut = pools.background(work, "t")
    assert started.wait(10) and fut.result(timeout=10) == 7

    def boom() -> int:
        raise RuntimeError("no answer")

    with pytest.raises(RuntimeError, match="no answer"):
        pools.background(boom, "t").result(timeout=10)


@pytest.mark.slow
def test_unreachable_aws_endpoint_is_an_error_through_the_early_inventory(tmp_path: Path) -> None:
    (port,) = procs.free_ports(1)  # nothing listens: every call is refused
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(f"""[targets.awsonly.aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:{port}"
db_instance_id = "db-1"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PGPROOF_"))}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    r = subprocess.run([str(PGPROOF), "check", "--target", "awsonly", "--config", str(cfg), "--reports",
                        str(tmp_path / "reports"), "--control", "NET-1,ENC-1"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr[-2000:]
    doc = json.loads(((tmp_path / "reports" / "latest-check").resolve() / "results.json").read_text())
    aws = [ch for c in doc["controls"] if c["id"] in ("NET-1", "ENC-1") for ch in c["checks"]
           if "aws" in ch["layers"]]
    assert len(aws) == 2 and all(ch["verdict"] == "error" for ch in aws), aws
    assert all(f"127.0.0.1:{port}" in ch["evidence"] and "could not" in ch["evidence"] for ch in aws), aws
