"""A Toxiproxy-API-compatible chaos proxy in pure asyncio (no Toxiproxy binary is installable here).

Speaks the upstream HTTP API (same routes, status codes and JSON shapes) so toxiproxy-python,
chaostoolkit-toxiproxy and toxiproxy-node-client work unchanged. Run it as
``python -m pgproof.proxy.server --host 127.0.0.1 --port 8474 [--populate FILE.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from pgproof.proxy.toxics import ApiError, Link, Toxic, parse_toxic, updated_toxic

VERSION = "2.12.0+pgproof"
READ_TIMEOUT = 15.0
MAX_BODY = 1 << 20
log = logging.getLogger("toxiproxy")


def split_addr(addr: str, what: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); an empty host or ``localhost`` means 127.0.0.1."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ApiError(f"bad request body: invalid {what} address {addr!r}", 400)
    host = host.strip("[]")
    return (host if host not in ("", "localhost") else "127.0.0.1"), int(port)


class Proxy:
    """A listener plus its live links; ``toxics`` is shared with the links so changes apply live."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name, self.upstream = name, upstream
        self.listen = listen or "127.0.0.1:0"
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
        self.links: dict[asyncio.Task[None], Link] = {}
        self._server: asyncio.Server | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": [t.to_json() for t in self.ordered()]}

    def ordered(self) -> list[Toxic]:
        """Upstream lists upstream-stream toxics first, each in creation order."""
        return sorted(self.toxics.values(), key=lambda t: t.stream != "upstream")

    async def start(self) -> None:
        if self._server is not None:
            return
        host, port = split_addr(self.listen, "listen")
        try:
            self._server = await asyncio.start_server(self._handle, host, port)
        except OSError as e:
            raise ApiError(f"listen tcp {self.listen}: {e.strerror or e}", 500) from e
        h, p = self._server.sockets[0].getsockname()[:2]
        self.listen = f"[{h}]:{p}" if ":" in h else f"{h}:{p}"
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Close the listener and drop every open connection, as upstream does on disable."""
        server, self._server, self.enabled = self._server, None, False
        if server is not None:
            server.close()
        tasks = list(self.links)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)
            log.info("proxy %s stopped", self.name)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            upstream = split_addr(self.upstream, "upstream")
        except ApiError:
            writer.close()
            return
        self.links[task] = link = Link((reader, writer), upstream, self.toxics)
        try:
            await link.run()
        finally:
            self.links.pop(task, None)

    def add_toxic(self, toxic: Toxic) -> None:
        if toxic.name in self.toxics:
            raise ApiError("toxic already exists", 409)
        self.toxics[toxic.name] = toxic
        for link in list(self.links.values()):
            link.toxic_added(toxic)

    def remove_toxic(self, name: str) -> None:
        toxic = self.get_toxic(name)
        del self.toxics[name]
        for link in list(self.links.values()):
            link.toxic_removed(toxic)

    def replace_toxic(self, new: Toxic) -> None:
        old, self.toxics[new.name] = self.get_toxic(new.name), new
        for link in list(self.links.values()):
            link.toxic_removed(old, cleanup=False)
            link.toxic_added(new)

    def get_toxic(self, name: str) -> Toxic:
        if name not in self.toxics:
            raise ApiError("toxic not found", 404)
        return self.toxics[name]


class Api:
    """Route table and handlers; one lock serialises state changes, like upstream's mutexes."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        if name not in self.proxies:
            raise ApiError("proxy not found", 404)
        return self.proxies[name]

    @staticmethod
    def _proxy_input(body: object, where: str = "") -> tuple[str, str, str, bool]:
        if not isinstance(body, dict):
            raise ApiError("bad request body: expected a JSON object", 400)
        for key in ("name", "upstream"):
            if not body.get(key):
                raise ApiError(f"missing required field: {key}{where}", 400)
        name, listen, upstream = body["name"], body.get("listen") or "", body["upstream"]
        enabled = body.get("enabled", True)
        if not all(isinstance(v, str) for v in (name, listen, upstream)) or not isinstance(enabled, bool):
            raise ApiError("bad request body: name, listen, upstream must be strings, enabled a bool", 400)
        split_addr(upstream, "upstream")
        if listen:
            split_addr(listen, "listen")
        return name, listen, upstream, enabled

    async def create(self, body: object) -> Proxy:
        name, listen, upstream, enabled = self._proxy_input(body)
        if name in self.proxies:
            raise ApiError("proxy already exists", 409)
        proxy = Proxy(name, listen, upstream)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def populate(self, body: object) -> list[Proxy]:
        if not isinstance(body, list):
            raise ApiError("bad request body: expected a JSON array of proxies", 400)
        inputs = [self._proxy_input(b, f" at proxy {i}") for i, b in enumerate(body, 1)]
        if len({i[0] for i in inputs}) != len(inputs):
            raise ApiError("bad request body: duplicate proxy name", 400)
        out = []
        for name, listen, upstream, enabled in inputs:
            old = self.proxies.get(name)
            if old is not None and old.listen == listen and old.upstream == upstream:
                out.append(old)
                continue
            if old is not None:
                await old.stop()
                del self.proxies[name]
            out.append(await self.create({"name": name, "listen": listen, "upstream": upstream,
                                          "enabled": enabled}))
        return out

    async def update(self, proxy: Proxy, body: object) -> None:
        if not isinstance(body, dict):
            raise ApiError("bad request body: expected a JSON object", 400)
        listen, upstream = body.get("listen", proxy.listen), body.get("upstream", proxy.upstream)
        enabled = body.get("enabled", proxy.enabled)
        if not isinstance(listen, str) or not isinstance(upstream, str) or not isinstance(enabled, bool):
            raise ApiError("bad request body: listen, upstream must be strings, enabled a bool", 400)
        split_addr(upstream, "upstream")
        split_addr(listen, "listen")
        if (listen, upstream) != (proxy.listen, proxy.upstream):
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled:
            await proxy.start()
        else:
            await proxy.stop()

    async def reset(self) -> None:
        for proxy in self.proxies.values():
            await proxy.start()
            for name in list(proxy.toxics):
                proxy.remove_toxic(name)

    async def route(self, method: str, parts: list[str], body: object) -> tuple[int, object]:
        """Dispatch like upstream's mux; returns (status, JSON-able body or None)."""
        n, update = len(parts), method in ("POST", "PATCH")
        async with self.lock:
            if parts == ["version"] and method == "GET":
                return 200, {"version": VERSION}
            if parts == ["reset"] and method == "POST":
                await self.reset()
                return 204, None
            if parts == ["populate"] and method == "POST":
                return 201, {"proxies": [p.to_json() for p in await self.populate(body)]}
            if parts == ["proxies"] and method == "GET":
                return 200, {name: p.to_json() for name, p in self.proxies.items()}
            if parts == ["proxies"] and method == "POST":
                return 201, (await self.create(body)).to_json()
            if n == 1 and parts[0] in ("version", "reset", "populate", "proxies"):
                return 405, {"error": "method not allowed", "status": 405}
            if n < 2 or n > 4 or parts[0] != "proxies" or n > 2 and parts[2] != "toxics":
                return 404, {"error": "404 page not found", "status": 404}
            proxy = self.get(parts[1])
            if n == 2 and method == "GET":
                return 200, proxy.to_json()
            if n == 2 and update:
                await self.update(proxy, body)
                return 200, proxy.to_json()
            if n == 2 and method == "DELETE":
                await proxy.stop()
                del self.proxies[proxy.name]
                return 204, None
            if n == 3 and method == "GET":
                return 200, [t.to_json() for t in proxy.ordered()]
            if n == 3 and method == "POST":
                toxic = parse_toxic(body)
                proxy.add_toxic(toxic)
                return 200, toxic.to_json()
            if n == 4 and method == "GET":
                return 200, proxy.get_toxic(parts[3]).to_json()
            if n == 4 and update:
                new = updated_toxic(proxy.get_toxic(parts[3]), body)
                proxy.replace_toxic(new)
                return 200, new.to_json()
            if n == 4 and method == "DELETE":
                proxy.remove_toxic(parts[3])
                return 204, None
            return 405, {"error": "method not allowed", "status": 405}

    async def shutdown(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.stop()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
            body += (await reader.readexactly(size + 2))[:-2]
            if len(body) > MAX_BODY:
                raise ValueError("body too large")
        await reader.readline()
    else:
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY:
            raise ValueError("body too large")
        body = await reader.readexactly(length)
    if headers.get("user-agent", "").startswith("Mozilla/"):
        method = "BROWSER"  # upstream refuses browsers (CSRF protection)
    return method.upper(), target, body


async def _serve_http(api: Api, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One request per connection (``Connection: close``): simple and enough for API clients."""
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            method, target, raw = await _read_request(reader)
        body: object
        if method == "BROWSER":
            status, body = 403, {"error": "User agent not allowed", "status": 403}
        else:
            parts = [unquote(p) for p in urlsplit(target).path.split("/") if p]
            try:
                try:
                    data = json.loads(raw) if raw.strip() else None
                except ValueError as e:
                    raise ApiError(f"bad request body: {e}", 400) from e
                if data is None and method in ("POST", "PATCH") and parts != ["reset"]:
                    raise ApiError("bad request body: EOF", 400)
                status, body = await api.route(method, parts, data)
            except ApiError as e:
                status, body = e.status, {"error": e.message, "status": e.status}
            except Exception as e:  # a bug must not kill the server; answer like Go's 500
                log.exception("internal error")
                status, body = 500, {"error": str(e), "status": 500}
        payload = b"" if body is None else json.dumps(body).encode() + b"\n"
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nConnection: close\r\n"
                f"Content-Length: {len(payload)}\r\n")
        if payload:
            head += "Content-Type: application/json\r\n"
        writer.write(head.encode() + b"\r\n" + payload)
        await writer.drain()
    except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, populate: str | None = None) -> None:
    """Run until SIGTERM/SIGINT, then stop every proxy (dropping its connections) and exit."""
    api, stop = Api(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if populate:
        with open(populate) as fh:
            await api.populate(json.load(fh))
    tasks: set[asyncio.Task[None]] = set()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await _serve_http(api, r, w)
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(handle, host, port)
    log.info("API listening on %s:%d (version %s)", host, port, VERSION)
    try:
        await stop.wait()
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await api.shutdown()
        if leaked := [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            log.warning("leaked %d tasks at shutdown: %s", len(leaked), leaked[:5])
        log.info("shut down")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8474)
    parser.add_argument("--populate", metavar="FILE.json", help="create these proxies at start")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(serve(args.host, args.port, args.populate))
    except (OSError, ValueError, ApiError) as e:
        print(f"toxiproxy_server: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
