"""``lab up --supervisor supervisord``: the Patroni nodes as services of a supervisor.

The ssh driver's destructive paths (kill, stop, undo) go through a service manager on
real hosts. systemd is not PID 1 here, so the lab runs supervisord (a lab component,
stopped by ``lab down``) with one program per node, and writes the ``lab-ssh`` target:
the ssh driver on ``local://`` hosts, each naming its program and data directory.

Each program writes the lab's pidfile for its node, then execs Patroni (setpriv keeps
the pid), so ``lab down``/``lab status`` and the lab driver see the same process the
supervisor does. ``autorestart=false`` and ``startsecs=0``: a SIGKILL stays a kill until
someone runs ``supervisorctl start`` (the driver's undo), as with a systemd unit that
has no ``Restart=``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

from pgproof import procs
from pgproof.lab.state import NODES, LabState

SUPERVISORS = ("none", "supervisord")
BIN = Path(sys.executable).parent


def conf(state: LabState) -> Path:
    return state.run_dir / "supervisor" / "supervisord.conf"


def supervisorctl() -> Path:
    return BIN / "supervisorctl"


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # supervisord expands %(name)s in its values


def render_conf(state: LabState, programs: dict[str, list[str]]) -> str:
    """supervisord.conf: a 0700 unix socket, one non-restarting program per node."""
    d = conf(state).parent
    lines = [
        "[unix_http_server]", f"file={_escape(str(d / 'supervisor.sock'))}", "chmod=0700", "",
        "[supervisord]", "nodaemon=true", f"logfile={_escape(str(state.log('supervisord')))}",
        "logfile_maxbytes=0", f"pidfile={_escape(str(d / 'supervisord.pid'))}",
        f"childlogdir={_escape(str(d))}", "", "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{_escape(str(d / 'supervisor.sock'))}", "",
    ]
    for node, argv in programs.items():
        # $0 is the pidfile: written by the shell whose pid the exec'd Patroni keeps.
        cmd = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(state.pidfile(node)), *argv]
        lines += [f"[program:{node}]", f"command={_escape(shlex.join(cmd))}",
                  "autostart=false", "autorestart=false", "startsecs=0", "stopwaitsecs=30",
                  "stopsignal=TERM", "redirect_stderr=true",
                  f"stdout_logfile={_escape(str(state.log(node)))}", "stdout_logfile_maxbytes=0", ""]
    return "\n".join(lines)


def ctl(state: LabState, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(supervisorctl()), "-c", str(conf(state)), *args],
                          capture_output=True, text=True, timeout=timeout, env=procs.clean_env())


def start_daemon(state: LabState, programs: dict[str, list[str]], timeout: float) -> int:
    """Start supervisord (no program yet) and wait until supervisorctl reaches it."""
    daemon = BIN / "supervisord"
    if not daemon.exists():
        raise procs.ComponentError("supervisord", f"{daemon} not found: run `make setup` "
                                   "(the project venv pins supervisor)")
    conf(state).parent.mkdir(parents=True, exist_ok=True)
    conf(state).parent.chmod(0o700)
    conf(state).write_text(render_conf(state, programs))
    pid = procs.spawn([str(daemon), "-n", "-c", str(conf(state))], state.log("supervisord-stdout"),
                      state.pidfile("supervisord"), procs.clean_env())
    procs.wait_until(lambda: ctl(state, "pid", timeout=5).stdout.strip() == str(pid), timeout,
                     "supervisord", "answering supervisorctl", state.log("supervisord"), pid)
    return pid


def start_node(state: LabState, node: str, timeout: float = 30) -> int:
    """``supervisorctl start NODE``; Patroni's pid once the program has written its pidfile."""
    r = ctl(state, "start", node)
    if r.returncode != 0 and "already started" not in r.stdout:
        raise procs.ComponentError(node, f"supervisorctl start failed: {(r.stdout + r.stderr).strip()}",
                                   state.log(node))

    def written() -> bool:
        pid = procs.read_pid(state.pidfile(node))
        return pid is not None and str(pid) == ctl(state, "pid", node, timeout=5).stdout.strip()

    procs.wait_until(written, timeout, node, "running under supervisord", state.log(node))
    return procs.read_pid(state.pidfile(node)) or 0


def ssh_tags(state: LabState, patronictl: Path) -> dict[str, str]:
    """The lab-ssh target's shared tags: supervisord, Patroni, the local socket as postgres."""
    return {"env": "lab", "supervisor": "supervisord", "supervisor_config": str(conf(state)),
            "supervisorctl": str(supervisorctl()), "patroni": "true",
            "patronictl": str(patronictl), "pg_bin": str(procs.PG_BIN), "sudo": "false",
            "os_user": procs.SERVICE_USER, "db_user": "postgres"}


def ssh_hosts(state: LabState) -> list[str]:
    """One ``local://`` host per node (listed as ``postgres.nodes`` is), its own settings in the URL."""
    return ["local://?" + urlencode({"name": n, "service": n, "pgdata": str(state.data_dir(n)),
                                     "patroni_config": str(state.node_dir(n) / "patroni.yml")},
                                    safe="/")
            for n in NODES]
