"""ENC-1..ENC-3: storage, backups and the backup bucket encrypted and private."""

from __future__ import annotations

import pytest

from pgproof.checks import aws as aws_checks
from pgproof.checks import live
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("ENC-1")
def test_storage_encrypted_with_customer_key(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_enc1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "ENC-1"))


@control("ENC-1")
def test_self_managed_data_on_encrypted_device(host_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    expect([p for f in host_facts for p in live.judge_host(f)], evidence,
           "; ".join(f"{f.host}: {f.data_dir} on {' > '.join(f.data_device_types)}, mode "
                     f"{f.data_dir_mode:o}" for f in host_facts if f.data_dir_mode is not None))


@control("ENC-2")
def test_snapshots_and_backups_encrypted_and_private(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_enc2(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "ENC-2"))


@control("ENC-3")
def test_backup_bucket_locked(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_enc3(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "ENC-3"))


@control("ENC-2")
def test_backup_repository_encrypted(backup_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    from pgproof.checks.backup import judge_enc2

    expect(judge_enc2(backup_facts), evidence,
           f"{backup_facts.tool} {backup_facts.stanza}: "
           + ", ".join(f"repo{r.get('key')} cipher {r.get('cipher')}" for r in backup_facts.repos))
