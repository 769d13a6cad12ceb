"""What the CIS PostgreSQL benchmark asks of a self-managed database host, read over testinfra.

One pass per host, each command bounded by ``timeouts.subprocess_s``: the service unit
(CIS 1.3), cleartext passwords in profiles, process environments, service files and psql
history (1.6, 1.7, 2.3, 2.4), the database account's process umask and the hba file's mode
(2.1), the extension directory (2.2) and FIPS mode (6.7). It only reads; a password it
finds is reported by where it is, never by its value.

A host URL may carry its own settings as query parameters (``local://?pgdata=/srv/pg&...``):
``name`` (how reports name it), ``pgdata``, ``os_user`` (default ``postgres``), ``home``
(default: that account's home, ``/root`` and ``/home/*``), ``unit`` (the systemd unit that
starts the database, default ``postgresql``; ``patroni`` where Patroni supervises it),
``processes`` (only processes whose command line contains this text: a host shared by
several clusters) and ``pg_bin`` (where ``pg_config`` is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pgproof.probes import commands
from pgproof.verdict import Unreachable

# One pass, tagged lines. $1 process scope ("" all), $2 pg_config, $3 hba file ("" unknown),
# then the homes. Its own pid comes first, so the scan can skip itself and its ancestors.
SCRIPT = r"""
scope=$1; pgc=$2; hba=$3; pgdata=$4; shift 4
echo "SELF $$"
if [ -n "$scope" ]; then
  procs=$(grep -laF -- "$scope" /proc/[0-9]*/cmdline 2>/dev/null | sed 's,/cmdline$,,')
else procs=$(ls -d /proc/[0-9]* 2>/dev/null); fi
pw='(^|[^A-Za-z0-9_])PGPASSWORD[[:space:]]*='
grep -HnsE "$pw" /etc/environment /etc/profile /etc/bash.bashrc /etc/profile.d/* | sed 's/^/PROFILE /'
sysconf=$("$pgc" --sysconfdir 2>/dev/null)
for h in "$@"; do
  grep -HnsE "$pw" "$h/.bashrc" "$h/.bash_profile" "$h/.bash_login" "$h/.profile" | sed 's/^/PROFILE /'
  grep -HnsiE '^[[:space:]]*password[[:space:]]*=' "$h/.pg_service.conf" | sed 's/^/SERVICE /'
  f="$h/.psql_history"
  if [ -e "$f" ] || [ -L "$f" ]; then echo "HIST $f -> $(readlink -f "$f")"; fi
done
[ -n "$sysconf" ] && grep -HnsiE '^[[:space:]]*password[[:space:]]*=' "$sysconf/pg_service.conf" \
  | sed 's/^/SERVICE /'
if [ -n "$procs" ]; then
  for d in $procs; do echo "$d/status"; done | xargs grep -HE '^(PPid|Uid|Umask):' 2>/dev/null \
    | sed 's/^/ST /'
  for d in $procs; do echo "$d/comm"; done | xargs grep -H . 2>/dev/null | sed 's/^/COMM /'
  for d in $procs; do echo "$d/environ"; done | xargs grep -lz '^PGPASSWORD=' 2>&1 \
    | sed 's/^/ENV /'
fi
[ -n "$hba" ] && [ -e "$hba" ] && echo "HBA $(stat -Lc '%a %U' "$hba")"
share=$("$pgc" --sharedir 2>/dev/null)
[ -n "$share" ] && echo "EXT $share/extension $(stat -Lc '%a %U %G' "$share/extension" 2>/dev/null)"
[ -n "$pgdata" ] && echo "PGV $(stat -Lc '%U' "$pgdata" 2>/dev/null) $(cat "$pgdata/PG_VERSION" 2>/dev/null)"
[ -r /proc/sys/crypto/fips_enabled ] && echo "FIPS $(cat /proc/sys/crypto/fips_enabled)"
if command -v openssl >/dev/null; then
  echo "OSSL $(openssl list -providers 2>&1 | tr '\n' ' ')"; fi
exit 0
"""


@dataclass
class HostCisFacts:
    host: str
    os_user: str
    homes: list[str]
    unit: str
    unit_state: str | None  # `systemctl is-enabled` answer; None: no systemd to ask
    unit_note: str = ""  # why there is no answer
    profile_hits: list[str] = field(default_factory=list)  # "file:line" assigning PGPASSWORD
    service_hits: list[str] = field(default_factory=list)  # "file:line" with password=
    histories: list[str] = field(default_factory=list)  # psql history files that keep commands
    scope: str = ""  # only processes whose command line contains it ("": all)
    processes: int = 0  # processes examined
    env_hits: list[str] = field(default_factory=list)  # "pid comm" with PGPASSWORD in environ
    env_unreadable: int = 0  # processes whose environment this account could not read
    umasks: dict[str, int] = field(default_factory=dict)  # the OS user's "pid comm" -> umask
    hba_file: str | None = None
    hba_mode: int | None = None
    hba_owner: str | None = None
    ext_dir: str | None = None
    ext_mode: int | None = None
    ext_owner: str | None = None
    ext_group: str | None = None
    fips_kernel: str | None = None  # /proc/sys/crypto/fips_enabled ("1" on); None: absent
    openssl_providers: str | None = None  # `openssl list -providers`; None: no openssl
    pgdata: str | None = None  # the data directory looked at (CIS 1.4)
    pgdata_owner: str | None = None  # its owner; None: not found or not readable
    pg_version_file: str | None = None  # its PG_VERSION; None: absent or not readable


def params(url: str) -> dict[str, str]:
    """A host URL's own settings (its query parameters, last one wins)."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def display(url: str) -> str:
    """How reports name a host: its ``name`` parameter, else the URL without parameters."""
    p = params(url)
    return p.get("name") or url.split("?")[0]


def _unit(host: Any, unit: str) -> tuple[str | None, str]:
    if unit == "none":
        return None, "the target says no systemd unit starts the database (unit=none)"
    r = host.run("systemctl is-enabled %s", unit)
    out, err = r.stdout.strip(), r.stderr.strip()
    if r.rc == 127 or "not been booted with systemd" in err or "Failed to connect to bus" in err:
        return None, f"systemd cannot be asked there ({err or 'systemctl not found'})"
    return (out or "not-found"), err


def _parse(f: HostCisFacts, out: str, uid: str) -> None:
    """The script's tagged lines into ``f``; a password's text never leaves ``_where``."""
    by_pid: dict[str, dict[str, str]] = {}
    self_pid, hits, unreadable = "", [], 0
    for line in out.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "SELF":
            self_pid = rest.strip()
        elif tag == "PROFILE":
            f.profile_hits.append(":".join(rest.split(":", 2)[:2]))
        elif tag == "SERVICE":
            f.service_hits.append(":".join(rest.split(":", 2)[:2]))
        elif tag == "HIST" and not rest.endswith("-> /dev/null"):
            f.histories.append(rest.split(" -> ")[0])
        elif tag in ("ST", "COMM"):
            path, _, value = rest.partition(":")
            rec = by_pid.setdefault(path.split("/")[2], {})
            if tag == "COMM":
                rec["comm"] = value
            else:
                key, _, v = value.partition(":")
                rec[key] = v.split()[0] if v.split() else ""
        elif tag == "ENV":
            if "Permission denied" in rest:
                unreadable += 1
            elif rest.startswith("/proc/"):
                hits.append(rest.split("/")[2])
        elif tag == "HBA" and rest.split():
            mode, f.hba_owner = rest.split()[:2]
            f.hba_mode = int(mode, 8)
        elif tag == "EXT":
            parts = rest.split()
            f.ext_dir = parts[0]
            if len(parts) == 4:
                f.ext_mode, f.ext_owner, f.ext_group = int(parts[1], 8), parts[2], parts[3]
        elif tag == "PGV":
            owner, _, version = rest.partition(" ")
            f.pgdata_owner, f.pg_version_file = owner or None, version.strip() or None
        elif tag == "FIPS":
            f.fips_kernel = rest.strip()
        elif tag == "OSSL":
            f.openssl_providers = rest
    mine, p = set(), self_pid
    while p and p not in mine and p in by_pid:  # this scan and what started it
        mine.add(p)
        p = by_pid[p].get("PPid", "")
    for pid, rec in by_pid.items():
        if pid in mine:
            continue
        f.processes += 1
        who = f"{pid} {rec.get('comm', '?')}"
        if pid in hits:
            f.env_hits.append(who)
        if rec.get("Uid") == uid and rec.get("Umask"):
            f.umasks[who] = int(rec["Umask"], 8)
    f.env_unreadable = unreadable


def gather(url: str, hba_file: str | None, limit_s: float = 60.0,
           pgdata: str | None = None) -> HostCisFacts:
    """Read one host; ``Unreachable`` when no command runs there or the OS user is unknown."""
    p = params(url)
    host = commands.host(url, limit_s)
    name, user = display(url), p.get("os_user", "postgres")
    ident = host.run("getent passwd %s", user)
    if ident.rc == 255 or (ident.rc != 0 and ident.stderr.strip()):
        raise Unreachable(f"{name}: cannot run a command there: {ident.stderr.strip()[:200]}")
    if ident.rc != 0:
        raise Unreachable(f"{name}: OS user {user!r} does not exist there (set os_user= in the "
                          "host URL to the account that runs the database)")
    fields = ident.stdout.strip().split(":")
    if "home" in p:
        homes = [p["home"]]
    else:
        listed = host.run("ls -d /home/*/").stdout.split()
        homes = list(dict.fromkeys([fields[5], "/root", *(h.rstrip("/") for h in listed)]))
    unit = p.get("unit", "postgresql")
    state, note = _unit(host, unit)
    f = HostCisFacts(name, user, homes, unit, state, note, scope=p.get("processes", ""),
                     hba_file=hba_file, pgdata=p.get("pgdata") or pgdata)
    pg_config = f"{p['pg_bin']}/pg_config" if "pg_bin" in p else "pg_config"
    r = host.run("sh -c %s scan " + " ".join(["%s"] * (4 + len(homes))), SCRIPT, f.scope,
                 pg_config, hba_file or "", f.pgdata or "", *homes)
    if r.rc != 0:
        raise Unreachable(f"{name}: the host scan failed (exit {r.rc}): {r.stderr.strip()[:200]}")
    _parse(f, r.stdout, fields[2])
    return f
