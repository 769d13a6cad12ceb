"""An AWS-only target on moto's HTTP server, provisioned like the lab's twin: cheap to check."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moto.server import ThreadedMotoServer

from pgproof import procs
from pgproof.lab import aws_twin
from pgproof.probes.aws import session


def toml_value(v: object) -> str:
    """A value as TOML (strings, numbers, booleans, paths and lists of them)."""
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v) if isinstance(v, Path) else v)


@contextmanager
def aws_only_config(tmp_path: Path) -> Iterator[Path]:
    """A pgproof.toml with one target, ``ci``, whose only section is ``[aws]`` on a fresh twin."""
    (port,) = procs.free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        creds = tmp_path / "aws-credentials"
        creds.write_text("[twin]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        twin = aws_twin.provision(session("twin", "us-east-1", creds), endpoint_url=url)
        aws = {**twin.aws_section(endpoint_url=url), "profile": "twin", "credentials_file": creds}
        cfg = tmp_path / "pgproof.toml"
        cfg.write_text('[targets.ci]\nenvironment = "staging"\n[targets.ci.aws]\n'
                       + "".join(f"{k} = {toml_value(v)}\n" for k, v in aws.items()))
        yield cfg
    finally:  # moto's backends are per process: the next twin must start empty
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"),
                               timeout=30).close()
        server.stop()
