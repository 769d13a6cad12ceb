"""The vpc lab's management plane: the DB tier's control APIs on the runner's loopback.

On a cloud, a game day's runner drives faults through the provider's API (RDS
``reboot_db_instance``, security groups) while the database itself sits in a
private subnet; only the data path (load, clock, probes) needs the bastion.
The vpc lab mirrors that split: Patroni's REST API and the Toxiproxy API of the
DB namespace appear on the root namespace's loopback at the same port numbers,
so the lab driver, ``pgproof gameday recover`` and the AWS twin's bridge
(``lab/aws_bridge.py``) work unchanged, while PostgreSQL, PgBouncer and HAProxy
stay unreachable from the runner (NET-5).

One process, one listener per port; each accepted connection opens its
upstream socket inside the DB namespace (a socket keeps the namespace it was
created in, so only the ``socket()`` call needs ``setns``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from functools import partial

from pgproof.lab import netns

LOOPBACK = "127.0.0.1"
CHUNK = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _relay(ns: str, port: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    with netns.inside(ns):  # the upstream socket lives in the DB namespace
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    up.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(up, (LOOPBACK, port)), 10)
    except (OSError, TimeoutError):
        up.close()
        writer.close()
        return
    ur, uw = await asyncio.open_connection(sock=up)
    await asyncio.gather(_pump(reader, uw), _pump(ur, writer))


async def serve(ns: str, ports: list[int]) -> None:
    servers = [await asyncio.start_server(partial(_relay, ns, p), LOOPBACK, p,
                                          reuse_address=True) for p in ports]
    print(f"mgmt bridge: {', '.join(map(str, ports))} -> namespace {ns}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--netns", required=True)
    ap.add_argument("--port", type=int, action="append", required=True)
    args = ap.parse_args(argv)
    asyncio.run(serve(args.netns, args.port))


if __name__ == "__main__":
    main()
