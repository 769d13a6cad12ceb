"""House rules of our own, checked with pgproof's facts: run with ``pytest --target staging``.

pgproof's pytest plugin (installed with pgproof, found by entry point) gives any test the
``--target`` option and one session fixture per layer, each probed once per run:
``target``, ``pg_facts`` (settings, roles, hba rules, replicas over one SQL session),
``tls_facts`` (handshakes per endpoint), ``pooler_facts``, ``aws_inventory``,
``azure_inventory``, ``host_facts``... A layer the target does not configure makes the
test "not checked" with the reason, as in pgproof's own suites.
"""

from __future__ import annotations

from pgproof.probes.postgres import PostgresFacts
from pgproof.probes.tls import TlsFacts
from pgproof.target import Target


def test_only_the_bootstrap_admin_is_a_superuser(pg_facts: PostgresFacts) -> None:
    superusers = {name for name, role in pg_facts.roles.items() if role.superuser}
    assert superusers <= {"postgres"}, f"unexpected superusers: {sorted(superusers)}"


def test_statements_are_logged_with_their_duration(pg_facts: PostgresFacts) -> None:
    threshold = pg_facts.setting("log_min_duration_statement")
    assert threshold not in ("", "-1"), "log_min_duration_statement is off"


def test_the_writer_offers_tls_1_3(tls_facts: dict[str, TlsFacts], target: Target) -> None:
    accepted = tls_facts["writer"].accepted_versions()
    assert "TLSv1.3" in accepted, f"{target.name}'s writer accepts only {sorted(accepted)}"
