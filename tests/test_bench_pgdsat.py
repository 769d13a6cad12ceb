"""bench/pgdsat.py: pgdsat's text report read into verdicts, and the script's refusals.

The report below has pgdsat 2.0's text shape (summary table, detailed part, footer); the
parser must keep each verdict, give manual items MANUAL unless pgdsat failed them, fold a
per-database sub-heading's messages into its item, and not take the footer's "(*)" for
the last item's mark.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "pgdsat.py"
_spec = importlib.util.spec_from_file_location("bench_pgdsat", BENCH)
assert _spec and _spec.loader
pgdsat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pgdsat)

REPORT = """POSTGRESQL SECURITY ASSESSEMENT REPORT ON LAB

################################################################################
# Summary Table of security checks
################################################################################

1 - Installation and Patches
1.4 - Ensure Data Cluster Initialized Successfully => SUCCESS
1.4.3 - Ensure Data Cluster have checksum enabled => FAILURE
1.8 - Ensure unused PostgreSQL extensions are removed (Manual)
4 - User Access and Authorization
4.8 - Ensure the set_user extension is installed (Manual) => FAILURE
4.10 - Ensure the public schema is protected => FAILURE
6.9 - Ensure a cryptographic extension is installed => SUCCESS
8.3 - Ensure miscellaneous configuration settings are correct (Manual)


################################################################################
# Detailled security assessment
################################################################################

#--------------------------------------------------------------------------------
# 1 - Installation and Patches
#--------------------------------------------------------------------------------
    # 1.4 - Ensure Data Cluster Initialized Successfully
    PostgreSQL enforces ownership.

        # 1.4.3 - Ensure Data Cluster have checksum enabled
        When checksum are not enabled, corruption can not be detected. (*)

        CRITICAL: Checksum are not enabled in PGDATA /data.

    # 4.10 - Ensure the public schema is protected
        # 4.10.1 - appdb
        WARNING: Schema public can be used by anyone in database appdb.

        DATA: public|10|{pg_database_owner=UC/pg_database_owner,=U/pg_database_owner}
    # 8.3 - Ensure miscellaneous configuration settings are correct (Manual)
        DATA: name|setting

(*) Check not part of the CIS Benchmark
"""


def test_report_verdicts_messages_and_cis_mapping() -> None:
    items = {i["id"]: i for i in pgdsat.parse_report(REPORT)}
    assert list(items) == ["1.4", "1.4.3", "1.8", "4.8", "4.10", "6.9", "8.3"]
    assert items["1.4"]["status"] == "SUCCESS" and items["1.4"]["cis17"] == "1.4"
    assert items["1.4.3"]["status"] == "FAILURE" and items["1.4.3"]["pgdsat_own"] is True
    assert items["1.4.3"]["cis17"] is None and items["1.4.3"]["cis_level"] is None
    assert items["1.4.3"]["messages"] == ["CRITICAL: Checksum are not enabled in PGDATA /data."]
    assert items["1.8"]["status"] == "MANUAL" and items["1.8"]["manual"] is True
    assert items["4.8"]["status"] == "FAILURE" and items["4.8"]["manual"] is True
    # a sub-heading's message belongs to its item; 4.10 is pgdsat's number, not CIS 17's
    assert items["4.10"]["messages"] == ["WARNING: Schema public can be used by anyone in database appdb."]
    assert items["4.10"]["cis17"] is None
    # same number, another recommendation in CIS 17
    assert items["6.9"]["cis17"] is None
    # the footer's "(*)" is not 8.3's mark
    assert items["8.3"]["pgdsat_own"] is False and items["8.3"]["cis_level"] == 1
    assert pgdsat.counts(list(items.values())) == {"SUCCESS": 2, "FAILURE": 3, "MANUAL": 2}


def test_an_html_report_or_an_empty_summary_is_refused() -> None:
    with pytest.raises(pgdsat.CannotRun, match="not a text report"):
        pgdsat.parse_report("<html><h1>Summary Table of security checks</h1></html>")
    empty = REPORT.split("1 - Installation")[0] + "\n# Detailled security assessment\n"
    with pytest.raises(pgdsat.CannotRun, match="lists no item"):
        pgdsat.parse_report(empty)


def test_script_refuses_a_missing_pgdsat_or_lab_with_one_sentence_and_exit_2(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(BENCH), "--lab-dir", str(tmp_path), "--pgdsat",
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert "is not a pgdsat checkout" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    fake = tmp_path / "pgdsat"
    (fake / "lib").mkdir(parents=True)
    (fake / "pgdsat").write_text("")
    (fake / "lib" / "PGDSAT.pm").write_text("")
    res = subprocess.run([sys.executable, str(BENCH), "--lab-dir", str(tmp_path / "nolab"), "--pgdsat",
                          str(fake)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "holds no lab" in res.stderr


AGREE = Path(__file__).resolve().parents[1] / "bench" / "cis_agreement.py"
_aspec = importlib.util.spec_from_file_location("bench_cis_agreement", AGREE)
assert _aspec and _aspec.loader
agreement = importlib.util.module_from_spec(_aspec)
_aspec.loader.exec_module(agreement)


def test_agreement_rows_compare_verdicts_and_explain_every_difference() -> None:
    cited = agreement.cis_controls()
    assert "BAK-2" in cited["7.4"] and "TLS-5" in cited["6.10"]
    assert agreement.agree("SUCCESS", {"BAK-2": "pass"}) is True
    assert agreement.agree("SUCCESS", {"BAK-2": "fail"}) is False
    assert agreement.agree("FAILURE", {"TLS-1": "pass", "TLS-2": "fail"}) is True
    assert agreement.agree("FAILURE", {"TLS-5": "inherited"}) is False
    assert agreement.agree("MANUAL", {"BAK-2": "fail"}) is None
    assert agreement.agree("SUCCESS", {"AUTH-3": "not-checked"}) is None
    items = {"7.4": {"id": "7.4", "status": "SUCCESS", "cis17": "7.4"},
             "6.9": {"id": "6.9", "status": "SUCCESS", "cis17": None}}
    rows = {r["item"]: r for r in agreement.rows_for(
        "archive-failing", items, {"BAK-2": "fail"}, only={"7.4", "6.9"})}
    assert rows["7.4"]["agree"] is False and "/bin/false" in rows["7.4"]["why"]
    text = agreement.markdown(list(rows.values()), {"when": "now", "pgdsat_version": "2.0",
                                                    "server_version": "15", "mutations": ["m"]})
    assert "| archive-failing | 7.4 Ensure WAL archiving" in text and "**no**" in text
    # a difference nobody explained is said so (and the script exits 1 on it)
    odd = agreement.rows_for("x", {"7.4": {"id": "7.4", "status": "FAILURE", "cis17": "7.4"}},
                             {"BAK-2": "pass"}, only={"7.4"})
    assert odd[0]["why"] == "UNEXPLAINED"


def test_cis_mutations_are_read_from_the_lab_catalogue() -> None:
    muts = agreement.cis_mutations()
    assert {"archive-failing", "md5-auth", "pgaudit-off"} <= set(muts)
    assert "pool-size-wrong" not in muts  # POOL-1 cites no CIS item
