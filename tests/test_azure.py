"""The Azure layer end to end: twin (ARM + Key Vault + Azurite over HTTPS) -> inventory -> judges.

One twin per module, provisioned through the pinned SDKs; the mutation matrix
changes its state through the SDKs and heals it, so nothing restarts between
rows. Bad input: config sentences, wrong scope, a refused resource type.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgproof.catalogue.registry import judges
from pgproof.errors import UserError
from pgproof.lab import azure_lab, pki
from pgproof.lab.azure_mutations import AZURE_MUTATIONS, UNBREAKABLE
from pgproof.probes import azure as azure_probe
from pgproof.probes.azure_sdk import Clients
from pgproof.procs import free_ports
from pgproof.target import Azure, ConfigError, Thresholds, parse_target
from pgproof.verdict import CannotVerify, NotApplicable, Unreachable

JUDGES = judges("azure")

TH = Thresholds()


def outcomes(inv: azure_probe.AzureInventory) -> dict[str, str]:
    out = {}
    for cid, judge in JUDGES.items():
        try:
            out[cid] = "fail" if judge(inv, TH) else "pass"
        except CannotVerify:
            out[cid] = "cannot-verify"
        except NotApplicable:
            out[cid] = "not-applicable"
        except Unreachable:
            out[cid] = "error"
    return out


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("azure")
    pki.make_ca(d / "tls")
    try:
        section = azure_lab.start(d, d / "tls", tuple(free_ports(3)), timeout=60)  # type: ignore[arg-type]
        section["_dir"] = str(d)
        yield section
    finally:
        azure_lab.stop(d)


def cfg(section: dict[str, Any], **over: Any) -> Azure:
    return Azure.model_validate({k: v for k, v in {**section, **over}.items() if k != "_dir"})


@pytest.mark.slow
def test_healthy_twin_passes_every_azure_layer(twin: dict[str, Any]) -> None:
    got = outcomes(azure_probe.gather(cfg(twin)))
    assert got.pop("TLS-4") == "cannot-verify"  # Azure exposes no certificate facts
    assert set(got.values()) == {"pass"}, got


@pytest.mark.slow
def test_mutation_matrix(twin: dict[str, Any]) -> None:
    """Each mutation fails exactly its controls; healing restores the healthy verdicts."""
    c, probe = Clients(cfg(twin)), azure_probe.AzureProbe(cfg(twin))
    covered = {cid for m in AZURE_MUTATIONS.values() for cid in m.breaks}
    assert covered | set(UNBREAKABLE) == set(JUDGES)
    wrong = {}
    for name, m in AZURE_MUTATIONS.items():
        m.apply(c)
        try:
            failed = {k for k, v in outcomes(probe.gather()).items() if v == "fail"}
        finally:
            m.heal(c)
        if failed != set(m.breaks):
            wrong[name] = sorted(failed)
    assert not wrong, wrong
    healed = outcomes(probe.gather())
    assert {k for k, v in healed.items() if v == "fail"} == set()


@pytest.mark.slow
@pytest.mark.parametrize(("over", "words"), [
    ({"subscription_id": "11111111-1111-4111-8111-111111111111"}, "subscription 1111"),
    ({"resource_group": "nope"}, "resource group nope does not exist"),
    ({"server_name": "nope-server"}, "flexible server nope-server does not exist"),
])
def test_wrong_scope_is_one_sentence(twin: dict[str, Any], over: dict, words: str) -> None:
    with pytest.raises(Unreachable, match=words) as exc:
        azure_probe.gather(cfg(twin, **over))
    assert "\n" not in str(exc.value)


@pytest.mark.slow  # > 4 s (subprocesses / a twin of its own): the lab tier runs it
def test_refused_resource_type_marks_only_its_layers_error(twin: dict[str, Any]) -> None:
    deny = Path(twin["_dir"]) / "azure" / "deny.json"
    token = Path(twin["token_file"]).read_text().strip()  # the twin accepts only its own token
    deny.write_text(json.dumps({token: ["Microsoft.Insights"]}))
    try:
        inv = azure_probe.gather(cfg(twin))
    finally:
        deny.unlink()
    assert "AuthorizationFailed" in inv.denied["alerts"]
    got = outcomes(inv)
    assert {k for k, v in got.items() if v == "error"} == {"MON-1", "AUDIT-1"}
    assert got["TLS-1"] == "pass" and got["BAK-5"] == "pass"


@pytest.mark.slow
def test_twin_refuses_any_token_but_its_own(twin: dict[str, Any], tmp_path: Path) -> None:
    """The lab twin's token is its owner's: the public default, or an unreadable file, is refused."""
    with pytest.raises(Unreachable, match="no usable Azure credentials"):
        azure_probe.gather(cfg(twin, token_file=None), connect_timeout=2)
    with pytest.raises(Unreachable, match="cannot read the twin's token_file"):
        azure_probe.gather(cfg(twin, token_file=str(tmp_path / "absent")), connect_timeout=2)


@pytest.mark.slow
def test_missing_credentials_is_unreachable(twin: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_USERNAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no az / azd / pwsh CLI credential
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1")  # no IMDS
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token")
    monkeypatch.setenv("IDENTITY_HEADER", "x")
    with pytest.raises(Unreachable, match="no usable Azure credentials"):
        azure_probe.gather(cfg(twin, credential="default", token_file=None), connect_timeout=2)


GOOD = {"subscription_id": "00000000-0000-4000-8000-00000000a2e0", "resource_group": "rg",
        "server_name": "db-1"}


@pytest.mark.slow
@pytest.mark.parametrize(("azure", "words"), [
    ({**GOOD, "subscription_id": "abc"}, "subscription_id must be a subscription GUID"),
    ({**GOOD, "server_name": "db-1.postgres.database.azure.com"}, "not its FQDN"),
    ({**GOOD, "endpoint": "http://127.0.0.1:1"}, "must be an https:// URL"),
    ({**GOOD, "nsg_ids": ["nsg-1"]}, "network security group resource ids"),
    ({**GOOD, "app_subnet_id": "subnet-1"}, "app_subnet_id must be a subnet resource id"),
    ({**GOOD, "backup_container": "b"}, "backup_container needs backup_storage_account"),
    ({**GOOD, "credential": "lab-static"}, "only for a twin"),
    ({**GOOD, "token_file": "token"}, "token_file is the lab twin's token"),
    ({**GOOD, "sever_name": "x"}, "unknown field"),
])
def test_bad_azure_section_is_one_sentence(azure: dict, words: str) -> None:
    data = {"postgres": {"writer": {"host": "h", "port": 5432}, "user": "u"}, "azure": azure}
    with pytest.raises(ConfigError, match=words) as exc:
        parse_target("t", data, "/tmp/pgproof.toml")
    assert "\n" not in str(exc.value) and isinstance(exc.value, UserError)  # the CLI exits 2


def test_no_azure_sdk_on_a_check_path_without_an_azure_layer() -> None:
    """Every suite imports the Azure judges, but the SDK (azure-core) loads only when an
    ``[azure]`` layer is gathered, and matplotlib never: a lab or RDS check pays for neither."""
    code = ("import sys, pgproof.pytest_plugin, pgproof.probes.azure, pgproof.checks.azure; "
            "print(sorted(m for m in sys.modules if m.startswith(('azure.', 'matplotlib'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert out.strip() == "[]", out
