"""The lab's secrets are its owner's: a local non-root user gets no lab password.

Measured on main: as ``nobody``, boto3 ``get_secret_value`` against the lab's moto
twin returned the master password, the Azure twin's Key Vault served its admin
secret to any bearer token, and the Azure store file (mode 0644) held it too.
Each check here runs as ``nobody`` (setpriv, clean environment, the project's own
Python) against the running lab, and the lab owner still gets every secret.
"""

from __future__ import annotations

import configparser
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from pgproof.lab import aws_twin, backup
from pgproof.lab.state import LabState
from pgproof.probes.aws import session
from pgproof.probes.azure_sdk import LAB_TOKEN, Clients
from pgproof.target import Azure

pytestmark = [pytest.mark.stage("suites"), pytest.mark.skipif(os.geteuid() != 0, reason="switches to the nobody user: run as root")]

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
          "env", "-i", "PATH=/usr/bin:/bin", "HOME=/tmp", sys.executable, "-c"]
# As nobody: which files under the given roots hold any of the secrets read from stdin.
SCAN = """
import os, sys
secrets = [s.encode() for s in sys.stdin.read().split()]
for root in sys.argv[1:]:
    for d, _, files in os.walk(root):
        for f in files:
            try:
                data = open(os.path.join(d, f), "rb").read()
            except OSError:
                continue
            if any(s in data for s in secrets):
                print(os.path.join(d, f))
"""
# As nobody, with the well-known dummy keys a moto user would try first.
GET_SECRET = """
import json, sys, boto3, botocore.exceptions
sm = boto3.client("secretsmanager", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
try:
    print(json.dumps({"got": bool(sm.get_secret_value(SecretId=sys.argv[2])["SecretString"])}))
except botocore.exceptions.ClientError as exc:
    print(json.dumps({"refused": exc.response["ResponseMetadata"]["HTTPStatusCode"]}))
"""
# As nobody: moto's control API (data.json dumps every model, secrets included).
MOTO_API = """
import json, sys, urllib.error, urllib.request
out = {}
for path, method in (("/moto-api/data.json", "GET"), ("/moto-api/reset-auth", "POST"),
                     ("//moto-api/data.json", "GET"), ("/moto-api/reset", "POST")):
    try:
        req = urllib.request.Request(sys.argv[1] + path, method=method, data=b"{}" if method == "POST" else None)
        out[path] = [urllib.request.urlopen(req, timeout=20).status, ""]
        out[path][1] = "read"
    except urllib.error.HTTPError as exc:
        out[path] = [exc.code, exc.read().decode(errors="replace")[:200]]
print(json.dumps(out))
"""
# As nobody: a Key Vault secret GET and an ARM GET with the public token and with none.
AZURE = """
import json, ssl, sys, urllib.error, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[3])
out = {}
for label, url in (("vault", sys.argv[1]), ("arm", sys.argv[2])):
    for token in ("", sys.argv[4]):
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
        try:
            out[f"{label} {bool(token)}"] = [urllib.request.urlopen(req, timeout=20, context=ctx).status,
                                             "read"]
        except urllib.error.HTTPError as exc:
            out[f"{label} {bool(token)}"] = [exc.code, exc.read().decode(errors="replace")[:200]]
print(json.dumps(out))
"""


def as_nobody(code: str, *args: str, stdin: str = "") -> str:
    r = subprocess.run([*NOBODY, code, *args], input=stdin, capture_output=True, text=True,
                       timeout=120, cwd="/")
    assert r.returncode == 0, f"as nobody: exit {r.returncode}: {r.stderr[-2000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def owner_secrets(lab: LabState) -> list[str]:
    """Every password and key the lab holds, as its owner reads them."""
    out = list(lab.secrets().values())
    creds = configparser.ConfigParser()
    creds.read(aws_twin.lab_files(lab.state_dir)[0])
    out += [creds[p]["aws_secret_access_key"] for p in creds.sections()]
    if lab.azure:
        cfg = Azure.model_validate(lab.azure)
        out.append(Clients(cfg).secrets.get_secret(str(cfg.admin_secret_name)).value)
        if cfg.token_file:
            out.append(cfg.token_file.read_text().strip())
    return [s for s in out if len(s) >= 16]  # shorter: a public placeholder, not a secret


def test_no_lab_secret_is_readable_by_a_local_user(lab: LabState, owner_secrets: list[str]) -> None:
    readable = as_nobody(SCAN, str(lab.state_dir), str(lab.run_dir), stdin="\n".join(owner_secrets))
    assert readable == "", f"as nobody, these lab files hold a lab secret:\n{readable}"
    # Each file holding one is owner-only in itself, not only behind the 0700 state directory.
    assert stat.S_IMODE(lab.state_dir.stat().st_mode) == 0o700
    files = [lab.secrets_file, lab.passfile, *aws_twin.lab_files(lab.state_dir), backup.config_file(lab),
             lab.state_dir / "azure" / "arm.json", lab.state_dir / "azure" / "token"]
    loose = {str(f): oct(f.stat().st_mode) for f in files
             if f.exists() and stat.S_IMODE(f.stat().st_mode) & 0o077}
    assert not loose, loose


def test_aws_twin_refuses_the_master_secret_to_a_local_user(lab: LabState) -> None:
    if not lab.aws:
        pytest.skip("lab without the AWS twin")
    url, secret_id = str(lab.aws["endpoint_url"]), str(lab.aws["secret_id"])
    got = json.loads(as_nobody(GET_SECRET, url, secret_id))
    assert "got" not in got, "as nobody, the twin served the lab's master secret"
    assert got["refused"] == 403, got
    api = json.loads(as_nobody(MOTO_API, url))
    assert all(status == 403 for status, _ in api.values()), api
    # The owner, through the lab target's own credentials file, still reads it.
    creds = Path(str(lab.aws["credentials_file"]))
    sm = session(str(lab.aws["profile"]), "us-east-1", creds).client("secretsmanager", endpoint_url=url)
    doc = json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    assert doc["password"] == lab.secrets()["postgres"]
    # A signed request with a wrong secret for the owner's key id is refused too.
    key_id, _ = aws_twin.lab_credentials(creds)
    forged = boto3.client("secretsmanager", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id=key_id, aws_secret_access_key="x" * 40)
    with pytest.raises(forged.exceptions.ClientError, match="SignatureDoesNotMatch|InvalidSignature"):
        forged.get_secret_value(SecretId=secret_id)


def test_backup_key_reads_only_s3(lab: LabState) -> None:
    """pgBackRest's key sits in the postgres user's config: it opens the bucket, not the secret."""
    if not lab.aws:
        pytest.skip("lab without the AWS twin")
    key_id, secret = aws_twin.lab_credentials(aws_twin.lab_files(lab.state_dir)[0],
                                              aws_twin.BACKUP_PROFILE)
    kw = {"endpoint_url": str(lab.aws["endpoint_url"]), "region_name": "us-east-1",
          "aws_access_key_id": key_id, "aws_secret_access_key": secret}
    boto3.client("s3", **kw).head_bucket(Bucket=str(lab.aws["backup_bucket"]))
    sm = boto3.client("secretsmanager", **kw)
    with pytest.raises(sm.exceptions.ClientError, match="AccessDenied"):
        sm.get_secret_value(SecretId=str(lab.aws["secret_id"]))


def test_azure_twin_refuses_key_vault_and_arm_without_the_owner_token(lab: LabState) -> None:
    if not lab.azure:
        pytest.skip("lab without the Azure twin")
    cfg = Azure.model_validate(lab.azure)
    vault = f"{cfg.key_vault_url}/secrets/{cfg.admin_secret_name}?api-version=7.5"
    arm = f"{cfg.endpoint}/subscriptions/{cfg.subscription_id}?api-version=2022-12-01"
    got = json.loads(as_nobody(AZURE, vault, arm, str(cfg.ca_file), LAB_TOKEN))
    assert all(status == 401 for status, _ in got.values()), got
    assert Clients(cfg).secrets.get_secret(str(cfg.admin_secret_name)).value  # the owner's token
