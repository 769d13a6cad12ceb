"""The testinfra host probe on a real local server: file modes, listener, block device chain."""

from __future__ import annotations

import pytest

from pgproof.checks.live import judge_host
from pgproof.lab.standalone import standalone_postgres
from pgproof.probes import host


@pytest.mark.slow
def test_local_host_facts_and_judgement() -> None:
    with standalone_postgres() as pg:
        key = pg.datadir.parent / "tls" / "server.key"
        facts = host.gather("local://", str(pg.datadir), str(key), pg.port)
        assert facts.data_dir_mode == 0o700 and facts.key_mode == 0o600
        assert any(str(pg.port) in x for x in facts.listening), facts.listening
        problems = judge_host(facts)
        # This machine's disk is not dm-crypt: the judge must say so (ENC-1), nothing else.
        assert ("crypt" in facts.data_device_types) == (problems == [])
        if problems:
            assert len(problems) == 1 and "not on an encrypted block device" in problems[0]
        key.chmod(0o644)
        loose = judge_host(host.gather("local://", str(pg.datadir), str(key), pg.port))
        assert any("server key" in p and "644" in p for p in loose)
