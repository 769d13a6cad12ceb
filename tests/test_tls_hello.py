"""The raw ClientHello (tls_hello) and its suite table, against real PostgreSQL 15 servers.

The raw hello is the only way this client offers EXPORT/RC4/DES/3DES suites, so
it must agree with Python's ssl wherever both can offer (anonymous, NULL, static
RSA), and a class the server cannot speak must come back as an alert.
"""

from __future__ import annotations

import re
import ssl
import struct
from collections.abc import Iterator

import pytest

from pgproof.checks.tls import judge_tls5
from pgproof.lab.standalone import Standalone, standalone_postgres
from pgproof.probes.tls import probe_endpoint
from pgproof.probes.tls_ciphers import (
    NO_FORWARD_SECRECY,
    SCANNED_VERSIONS,
    WEAK_CLASSES,
    CipherOutcome,
    classes_of,
    enumerate_class,
)
from pgproof.probes.tls_hello import RENEGOTIATION_SCSV, HelloOutcome, client_hello, hello
from pgproof.probes.tls_suites import BY_ID, SUITES, class_suites, iana_classes
from pgproof.target import Thresholds

CLASS = {c.name: c for c in WEAK_CLASSES}
BOTH_WAYS = ("anonymous", "NULL", NO_FORWARD_SECRECY)  # classes Python's ssl can offer too
RAW_ONLY = ("EXPORT", "RC4", "DES", "3DES")
SETTINGS = {  # the lab mutations' server settings, and one with eNULL
    "healthy": {},
    "tls-anon-ciphers": {"ssl_ciphers": "ALL:@SECLEVEL=0"},
    "tls-weak": {"ssl_min_protocol_version": "TLSv1", "ssl_ciphers": "ALL:@SECLEVEL=0"},
    "enull": {"ssl_min_protocol_version": "TLSv1", "ssl_ciphers": "ALL:eNULL:@SECLEVEL=0"},
    "min-tlsv1": {"ssl_min_protocol_version": "TLSv1"},  # 1.0/1.1 fail with internal_error
}
# IDs from the brief (IANA registry), per class: the table must hold at least these.
SAMPLE = {
    "EXPORT": {0x0003, 0x0006, 0x0008, 0x000B, 0x000E, 0x0011, 0x0014, 0x0017, 0x0019,
               0x0062, 0x0063, 0x0064, 0x0065},
    "RC4": {0x0004, 0x0005, 0x0018, 0x0020, 0x0024, 0x008A, 0x008E, 0x0092, 0xC002, 0xC007,
            0xC00C, 0xC011, 0xC016},
    "DES": {0x0009, 0x000C, 0x000F, 0x0012, 0x0015, 0x001A},
    "3DES": {0x000A, 0x000D, 0x0010, 0x0013, 0x0016, 0x001B, 0x008B, 0x008F, 0x0093, 0xC003,
             0xC008, 0xC00D, 0xC012, 0xC017},
    "MD5": {0x0001, 0x0004, 0x0018},
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Standalone]]:
    with (standalone_postgres() as healthy, standalone_postgres(settings=SETTINGS["tls-anon-ciphers"]) as anon,
          standalone_postgres(settings=SETTINGS["tls-weak"]) as weak,
          standalone_postgres(settings=SETTINGS["enull"]) as enull,
          standalone_postgres(cert_key="rsa", settings=SETTINGS["tls-weak"]) as rsa,
          standalone_postgres(settings=SETTINGS["min-tlsv1"]) as min_tlsv1):
        yield {"healthy": healthy, "tls-anon-ciphers": anon, "tls-weak": weak, "enull": enull,
               "rsa-weak": rsa, "min-tlsv1": min_tlsv1}


# --- the table ---------------------------------------------------------------------------


def test_suite_ids_match_openssl_and_names_match_sslyze() -> None:
    from sslyze.plugins.openssl_cipher_suites import cipher_suites as sslyze_names

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:eNULL:@SECLEVEL=0")
    openssl_ids = {c["name"]: c["id"] & 0xFFFF for c in ctx.get_ciphers()}
    checked = [s for s in SUITES if s.openssl in openssl_ids]
    assert len(checked) >= 40
    assert all(openssl_ids[s.openssl] == s.id for s in checked), [
        (s.iana, hex(s.id), hex(openssl_ids[s.openssl])) for s in checked if openssl_ids[s.openssl] != s.id]
    rfc = sslyze_names._TLS_OPENSSL_TO_RFC_NAMES_MAPPING
    assert all(rfc[s.openssl] == s.iana for s in SUITES if s.openssl), "IANA name differs from sslyze's"
    assert len(BY_ID) == len(SUITES), "duplicate suite ID"
    for cls, ids in SAMPLE.items():
        assert ids <= {s.id for s in class_suites(cls, "TLSv1")}, cls
    # every weak suite Python's ssl can offer is in the table, in the same class
    for wc in WEAK_CLASSES:
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            c.set_ciphers(f"{wc.openssl}:@SECLEVEL=0")
        except ssl.SSLError:
            continue
        for cipher in c.get_ciphers():
            if cipher["protocol"] != "TLSv1.3" and cipher["id"] & 0xFFFF in BY_ID:
                assert wc.name in iana_classes(BY_ID[cipher["id"] & 0xFFFF].iana), cipher["name"]
            elif cipher["protocol"] != "TLSv1.3":
                pytest.fail(f"{cipher['name']} ({wc.name}) missing from tls_suites")


def test_iana_classes_agree_with_openssl_name_classes() -> None:
    for s in SUITES:
        if s.openssl:
            assert iana_classes(s.iana) == classes_of(s.openssl), (s.iana, s.openssl)


def test_client_hello_bytes() -> None:
    ids = [s.id for s in class_suites("RC4", "TLSv1.2")]
    rec = client_hello("TLSv1.2", ids, "db.example.com")
    kind, rec_version, length = struct.unpack("!BHH", rec[:5])
    assert (kind, rec_version, length) == (22, 0x0301, len(rec) - 5)
    assert rec[5] == 1 and int.from_bytes(rec[6:9], "big") == length - 4
    body = rec[9:]
    assert body[:2] == b"\x03\x03" and body[34] == 0  # TLS 1.2, no session id
    n = struct.unpack("!H", body[35:37])[0] // 2
    offered = struct.unpack(f"!{n}H", body[37:37 + 2 * n])
    assert list(offered) == [*ids, RENEGOTIATION_SCSV]
    exts = body[37 + 2 * n + 2:]
    ext_len = struct.unpack("!H", exts[:2])[0]
    assert ext_len == len(exts) - 2
    kinds, i = [], 2
    while i < len(exts):
        k, ln = struct.unpack("!HH", exts[i:i + 4])
        kinds.append(k)
        i += 4 + ln
    assert kinds == [0x0000, 0x000A, 0x000B, 0x000D]  # SNI, groups, point formats, sigalgs
    assert b"db.example.com" in exts
    legacy = client_hello("TLSv1", ids, "127.0.0.1")  # no SNI for an IP, no sigalgs before 1.2
    assert legacy[9:11] == b"\x03\x01" and b"\x00\x0d" not in legacy[-40:]
    assert b"127.0.0.1" not in legacy
    with pytest.raises(ValueError, match="at least one"):
        client_hello("TLSv1.2", [])


# --- against real servers ----------------------------------------------------------------


@pytest.mark.slow
def test_raw_only_classes_get_an_alert_from_real_servers(servers: dict[str, Standalone]) -> None:
    """RC4/3DES/EXPORT/DES: the server's OpenSSL 3 cannot speak them, even at SECLEVEL=0."""
    for name in ("healthy", "tls-weak"):
        pg = servers[name]
        for cls in RAW_ONLY:
            for v in SCANNED_VERSIONS:
                r = hello(pg.host, pg.port, v, [s.id for s in class_suites(cls, v)], "localhost")
                expected = ("handshake_failure" if name == "tls-weak" or v == "TLSv1.2"
                            else "protocol_version")
                assert (r.outcome, r.alert) == (HelloOutcome.REFUSED, expected), (name, cls, v, r)


def test_raw_hello_accepts_what_the_server_picks(servers: dict[str, Standalone]) -> None:
    pg = servers["tls-anon-ciphers"]
    ids = [s.id for s in class_suites("anonymous", "TLSv1.2")]
    r = hello(pg.host, pg.port, "TLSv1.2", ids)
    assert r.outcome is HelloOutcome.ACCEPTED and r.version == "TLSv1.2"
    assert r.suite in ids and "anonymous" in iana_classes(BY_ID[r.suite].iana)
    refused = hello(pg.host, pg.port, "TLSv1", ids)  # the minimum stays 1.2
    assert (refused.outcome, refused.alert) == (HelloOutcome.REFUSED, "protocol_version")


def test_malformed_hello_is_inconclusive_never_refused(servers: dict[str, Standalone]) -> None:
    """An alert that blames our bytes (decode_error) proves nothing about the suites."""
    pg = servers["healthy"]
    good = bytearray(client_hello("TLSv1.2", [0x0004]))
    at = 9 + 35 + 2 + 2 * 2 + 2  # record+handshake headers, version..session id, 2 suites, compression
    claimed = struct.unpack("!H", good[at:at + 2])[0]
    good[at:at + 2] = struct.pack("!H", claimed + 5)  # extensions claim 5 bytes more than sent
    r = hello(pg.host, pg.port, "TLSv1.2", [], payload=bytes(good))
    assert (r.outcome, r.alert) == (HelloOutcome.INCONCLUSIVE, "decode_error"), r
    assert "rejected our ClientHello itself" in r.detail


@pytest.mark.slow
@pytest.mark.parametrize("config", ["healthy", "tls-anon-ciphers", "tls-weak", "enull", "rsa-weak",
                                    "min-tlsv1"])
def test_raw_hello_and_ssl_agree_where_both_can_offer(servers: dict[str, Standalone],
                                                      config: str) -> None:
    pg = servers[config]
    accepted_any = False
    for cls in BOTH_WAYS:
        for v in SCANNED_VERSIONS:
            s_out, s_acc, s_why = enumerate_class(pg.host, pg.port, CLASS[cls], v, "ssl")
            r_out, r_acc, r_why = enumerate_class(pg.host, pg.port, CLASS[cls], v, "raw")
            assert (s_out, set(s_acc)) == (r_out, set(r_acc)), (config, cls, v, s_why, r_why)
            assert s_out in (CipherOutcome.ACCEPTED, CipherOutcome.REFUSED), (config, cls, v, s_why)
            accepted_any |= bool(s_acc)
    assert accepted_any is (config not in ("healthy", "min-tlsv1")), config


def test_tls5_passes_on_a_healthy_server_with_raw_evidence(servers: dict[str, Standalone]) -> None:
    pg = servers["healthy"]
    facts = probe_endpoint(pg.host, pg.port, pg.ca)
    assert facts.ciphers is not None
    assert all(r.outcome is CipherOutcome.REFUSED for r in facts.ciphers.results), [
        r for r in facts.ciphers.results if r.outcome is not CipherOutcome.REFUSED]
    for cls in RAW_ONLY:
        row = facts.ciphers.get(cls, "TLSv1.2")
        assert row is not None and row.raw == row.offered and len(row.raw) >= 10, row
    summary = facts.ciphers.raw_summary()
    assert "EXPORT/RC4/DES/3DES/MD5" in summary and ";" not in summary, summary
    assert re.search(r"offered by raw ClientHello: refused \(alert protocol_version to one hello "
                     r"offering all \d+ raw suites\) at TLSv1/TLSv1.1, refused \(alert "
                     r"handshake_failure\) at TLSv1.2$", summary), summary
    assert judge_tls5(facts, Thresholds()) == []


def test_only_protocol_version_spares_a_version(servers: dict[str, Standalone]) -> None:
    """A version refused with another alert (internal_error here) is still offered class by class."""
    pg = servers["min-tlsv1"]
    facts = probe_endpoint(pg.host, pg.port, pg.ca)
    assert facts.versions["TLSv1"].reason == "TLSV1_ALERT_INTERNAL_ERROR"
    assert facts.ciphers is not None
    for cls in ("anonymous", "RC4"):
        row = facts.ciphers.get(cls, "TLSv1")
        assert row is not None and row.outcome is CipherOutcome.REFUSED
        assert "altogether" not in row.reason and "handshake_failure" in row.reason, row
    assert judge_tls5(facts, Thresholds()) == []


def _reply_to(data: bytes) -> object:
    """What read_reply makes of ``data`` sent by a peer that then closes."""
    import socket

    from pgproof.probes.tls_hello import read_reply

    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(2)
        theirs.sendall(data)
        theirs.shutdown(socket.SHUT_WR)
        return read_reply(ours)


def test_read_reply_edge_cases() -> None:
    """A ServerHello split over two records, a PostgreSQL error, silence, an unknown alert."""
    from pgproof.probes.tls_hello import HelloReply

    body = b"\x03\x03" + bytes(32) + b"\x20" + bytes(32) + b"\x00\x05" + b"\x00"
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    split = (struct.pack("!BHH", 22, 0x0303, 10) + msg[:10]
             + struct.pack("!BHH", 22, 0x0303, len(msg) - 10) + msg[10:])
    assert _reply_to(split) == HelloReply(HelloOutcome.ACCEPTED, suite=0x0005, version="TLSv1.2")
    r = _reply_to(b"EFATAL: no pg_hba.conf entry")
    assert isinstance(r, HelloReply) and r.outcome is HelloOutcome.INCONCLUSIVE
    r = _reply_to(b"")
    assert isinstance(r, HelloReply) and r.outcome is HelloOutcome.ERROR
    r = _reply_to(struct.pack("!BHHBB", 21, 0x0303, 2, 2, 50))
    assert isinstance(r, HelloReply) and (r.outcome, r.alert) == (HelloOutcome.INCONCLUSIVE,
                                                                  "decode_error")
    r = _reply_to(struct.pack("!BHHBB", 21, 0x0303, 2, 2, 40))
    assert isinstance(r, HelloReply) and (r.outcome, r.alert) == (HelloOutcome.REFUSED,
                                                                  "handshake_failure")
