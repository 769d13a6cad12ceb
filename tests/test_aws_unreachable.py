"""An unreachable AWS endpoint makes every AWS check an error with its sentence, never a pass
or a fail (the inventory is gathered by the first check that asks, not in a background thread:
see ``pgproof.pytest_fixtures.aws_inventory``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof import procs

PGPROOF = Path(sys.executable).parent / "pgproof"


@pytest.mark.slow
def test_unreachable_aws_endpoint_is_an_error(tmp_path: Path) -> None:
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
