"""AUTH-1..5, AUTHZ-1: auth method, managed secret, password strength, code, admin name, privileges."""

from __future__ import annotations

import pytest

from pgproof.checks import aws as aws_checks
from pgproof.checks import live
from pgproof.checks import postgres as judge
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("AUTH-1")
def test_scram_and_no_weak_hba_methods(pg_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(judge.judge_auth1(pg_facts), evidence,
           f"password_encryption={pg_facts.settings.get('password_encryption')}; "
           f"hba methods: {sorted({r.auth_method for r in pg_facts.hba_rules or []})}")


@control("AUTH-2")
def test_master_secret_managed_and_rotated(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_auth2(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "AUTH-2"))


@control("AUTH-3")
def test_master_password_strong(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_auth3(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "AUTH-3"))


@control("AUTH-4")
def test_no_credentials_in_source(source_findings, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(live.judge_auth4(source_findings), evidence, f"scanned {target.source_tree}: no literals")


@control("AUTH-5")
def test_master_user_not_default(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_auth5(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "AUTH-5"))


@control("AUTHZ-1")
def test_app_role_least_privilege(pg_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    app_role = target.require_postgres("AUTHZ-1").app_role
    expect(judge.judge_authz1(pg_facts, app_role), evidence,
           f"role {app_role}: no elevated attributes")
