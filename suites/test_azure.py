"""The Azure layer of every control it applies to: one inventory pass, one judge each."""

from __future__ import annotations

import pytest

from pgproof.checks import azure, azure_ops
from pgproof.checks.azure_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("TLS-1")
def test_azure_tls1(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_tls1(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "TLS-1"))

@control("TLS-2")
def test_azure_tls2(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_tls2(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "TLS-2"))

@control("TLS-4")
def test_azure_tls4(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_tls4(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "TLS-4"))

@control("NET-1")
def test_azure_net1(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_net1(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "NET-1"))

@control("NET-2")
def test_azure_net2(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_net2(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "NET-2"))

@control("NET-3")
def test_azure_net3(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_net3(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "NET-3"))

@control("NET-4")
def test_azure_net4(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_net4(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "NET-4"))

@control("AUTH-2")
def test_azure_auth2(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_auth2(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "AUTH-2"))

@control("AUTH-5")
def test_azure_auth5(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_auth5(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "AUTH-5"))

@control("ENC-1")
def test_azure_enc1(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_enc1(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "ENC-1"))

@control("ENC-3")
def test_azure_enc3(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure.judge_enc3(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "ENC-3"))

@control("AUDIT-1")
def test_azure_audit1(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_audit1(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "AUDIT-1"))

@control("BAK-1")
def test_azure_bak1(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_bak1(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "BAK-1"))

@control("BAK-2")
def test_azure_bak2(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_bak2(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "BAK-2"))

@control("BAK-3")
def test_azure_bak3(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_bak3(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "BAK-3"))

@control("BAK-4")
def test_azure_bak4(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_bak4(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "BAK-4"))

@control("BAK-5")
def test_azure_bak5(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_bak5(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "BAK-5"))

@control("HA-1")
def test_azure_ha1(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_ha1(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "HA-1"))

@control("MON-1")
def test_azure_mon1(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_mon1(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "MON-1"))

@control("MON-2")
def test_azure_mon2(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_mon2(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "MON-2"))

@control("MNT-1")
def test_azure_mnt1(azure_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(azure_ops.judge_mnt1(azure_inventory, target.thresholds), evidence,
           seen(azure_inventory, "MNT-1"))
