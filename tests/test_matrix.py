"""The mutation matrix: every check passes on the healthy lab and fails on its mutation.

Each run goes through the real entry point (`pytest suites --target lab`) in a
subprocess and reads the per-control verdicts from results.json.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from matrixlib import (
    REPO,
    assert_fails_exactly,
    healthy_run,
    lab_mutations,
    run_suites,
    twin_mutations,
)

from pgproof.controls import CONTROLS
from pgproof.lab import mutations
from pgproof.lab.state import LabState
from pgproof.target import Target, load_target

pytestmark = pytest.mark.stage("matrix")

ACCEPTABLE_HEALTHY = {"pass", "cannot-verify", "skip"}


@pytest.fixture(scope="module")
def healthy(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return healthy_run(lab, tmp_path_factory.mktemp("healthy"))


def test_healthy_lab_is_compliant(healthy: dict[str, str], lab: LabState) -> None:
    """Waived only where the lab target's own waivers say why (machine-wide facts)."""
    waivers = load_target("lab", Path("/nonexistent/pgproof.toml"), lab.target_file).waivers
    waived = {w.control or str(w.check).split("[")[1].rsplit("-", 1)[0] for w in waivers}
    bad = {c: v for c, v in healthy.items()
           if v not in ACCEPTABLE_HEALTHY and not (v == "waived" and c in waived)}
    assert not bad, f"healthy lab has non-compliant controls: {bad}"
    assert set(healthy) >= set(CONTROLS), "a control vanished from the report"
    assert healthy["TLS-5"] == "pass", "TLS-5: weak classes must be proven refused (raw ClientHello)"
    skipped = {c for c, v in healthy.items() if v == "skip"}
    assert skipped <= set(mutations.UNBREAKABLE), f"skipped without a written reason: {skipped}"


def test_every_control_has_a_mutation_or_a_reason() -> None:
    covered = {c for m in mutations.catalogue().values() for c in m.breaks}
    missing = set(CONTROLS) - covered - set(mutations.UNBREAKABLE)
    assert not missing, f"controls no mutation proves can fail: {sorted(missing)}"


@pytest.mark.parametrize("name", lab_mutations())
def test_mutation_fails_exactly_its_controls(name: str, lab: LabState, healthy: dict[str, str],
                                             tmp_path: Path) -> None:
    """Lab mutations here; the AWS twin's own in tests/test_matrix_aws.py (another lab)."""
    assert_fails_exactly(name, lab, healthy, tmp_path)


def test_the_matrix_covers_every_mutation() -> None:
    assert sorted(lab_mutations() + twin_mutations()) == sorted(mutations.catalogue())


def test_healed_lab_is_back_to_healthy(lab: LabState, healthy: dict[str, str], tmp_path: Path) -> None:
    assert run_suites(lab, tmp_path) == healthy


def test_cis_profile_judges_tls_1_3_and_the_default_keeps_1_2(lab: LabState,
                                                             healthy: dict[str, str],
                                                             tmp_path: Path) -> None:
    """CIS 17 v1.0.0 6.9: under --profile cis-level1 TLS-1's minimum is TLSv1.3, so the lab (TLS
    1.2, the default spec's minimum) fails it there and passes it in the default run."""
    assert healthy["TLS-1"] == "pass"
    got = run_suites(lab, tmp_path, "--profile", "cis-level1", "--control", "TLS-1")
    assert got["TLS-1"] == "fail" and {v for c, v in got.items() if c != "TLS-1"} == {
        "not-selected"}, got
    doc = (tmp_path / "latest" / "results.json").read_text()
    assert "TLSv1.3" in doc and "TLSv1.2" in doc


def test_check_exit_code_is_1_when_non_compliant(lab: LabState, tmp_path: Path) -> None:
    """Schedulers tell non-compliant (1) from could-not-check (2) and compliant (0)."""
    mutations.apply(lab.state_dir, "superuser-app")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
        env.update(PGPROOF_LAB_TARGET=str(lab.target_file), PGPROOF_CONFIG="/nonexistent")
        r = subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", "lab",
                            "--reports", str(tmp_path)], capture_output=True, text=True, env=env,
                           cwd=REPO, timeout=120)
    finally:
        mutations.heal(lab.state_dir)
    assert r.returncode == 1, r.stdout[-2000:]
    assert "FAIL" in r.stdout and "AUTHZ-1" in r.stdout


def test_break_refuses_unknown_and_double_mutations(lab: LabState) -> None:
    from pgproof.procs import ComponentError

    with pytest.raises(ComponentError, match="unknown mutation 'nope'; known: "):
        mutations.apply(lab.state_dir, "nope")
    mutations.apply(lab.state_dir, "source-dsn")
    try:
        with pytest.raises(ComponentError, match="still applied"):
            mutations.apply(lab.state_dir, "superuser-app")
    finally:
        assert "healed source-dsn" in mutations.heal(lab.state_dir)
    assert mutations.heal(lab.state_dir) == "lab: nothing to heal"


def test_tls_verdicts_agree_with_sslyze_on_healthy_and_weak_lab(lab: LabState,
                                                               lab_target: Target) -> None:
    """An independent scanner (sslyze, PostgreSQL STARTTLS) sees the same accepted versions and
    the same accepted weak suites per version, at every endpoint the TLS suite probes."""
    from pgproof.probes import sslyze_check, tls
    from pgproof.probes.endpoints import tls_endpoints

    eps = {n: (e.host, e.port) for n, e in tls_endpoints(lab_target).items()}
    assert {"writer", "reader1", "pooler", "node1", "node2"} <= set(eps), eps

    def ours() -> dict[tuple[str, int], tls.TlsFacts]:
        return {hp: tls.probe_endpoint(*hp, lab.ca_file) for hp in eps.values()}

    def compare(facts: dict[tuple[str, int], tls.TlsFacts]) -> None:
        scanned = sslyze_check.accepted_suites_many(list(eps.values()))
        for name, hp in eps.items():
            theirs = scanned[hp]
            assert {v for v, s in theirs.items() if s.accepted} == facts[hp].accepted_versions(), name
            scan = facts[hp].ciphers
            assert scan is not None, name
            assert sslyze_check.weak_suite_disagreements(scan, theirs) == {}, name

    healthy = ours()
    assert all(f.accepted_versions() == {"TLSv1.2", "TLSv1.3"} for f in healthy.values()), healthy
    assert all(f.ciphers is not None and not f.ciphers.accepted() for f in healthy.values())
    compare(healthy)
    mutations.apply(lab.state_dir, "tls-weak")
    try:
        weak = ours()
        compare(weak)
    finally:
        mutations.heal(lab.state_dir)
    database = [hp for n, hp in eps.items() if n != "pooler"]  # PgBouncer keeps its own TLS
    assert all({"TLSv1", "TLSv1.1"} <= weak[hp].accepted_versions() for hp in database), weak
    assert all("ADH-AES256-GCM-SHA384" in weak[hp].ciphers.accepted("TLSv1.2")  # type: ignore[union-attr]
               for hp in database)
