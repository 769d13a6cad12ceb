"""Stream side of the Toxiproxy-compatible server: toxic definitions and one ``Link`` per connection.

Each direction of a link is a reader task (timestamps chunks into a bounded queue) and a writer
task (applies the toxics that are active *now*), so latency is pipelined as upstream does and
toxics added or removed through the API take effect on connections that are already open.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

STREAMS = ("upstream", "downstream")  # upstream: client -> server; downstream: server -> client
TOXIC_ATTRS: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
}
CHUNK = 32 * 1024
CONNECT_TIMEOUT = 10.0


class ApiError(Exception):
    """An error with the HTTP status upstream Toxiproxy would answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(eq=False)
class Toxic:
    """Immutable once published: an update replaces the object, so links can compare identity."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"attributes": dict(self.attributes), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": self.toxicity}


def _bad(msg: str) -> ApiError:
    return ApiError(f"bad request body: {msg}", 400)


def _attributes(kind: str, given: object, base: Mapping[str, int]) -> dict[str, int]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise _bad("attributes must be an object")
    attrs = dict(base)
    for key, value in given.items():
        if key in attrs:  # like Go's decoder, unknown keys are ignored
            if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
                raise _bad(f"attribute {key} of a {kind} toxic must be an integer")
            attrs[key] = int(value)
    return attrs


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad("toxicity must be a number")
    return float(value)


def parse_toxic(body: object) -> Toxic:
    """Validate a toxic-create body in upstream's order: stream, type, then attributes."""
    if not isinstance(body, dict):
        raise _bad("expected a JSON object")
    stream = body.get("stream", "downstream")
    if not isinstance(stream, str) or stream.lower() not in STREAMS:
        raise ApiError("stream was invalid, can be either upstream or downstream", 400)
    kind, name = body.get("type"), body.get("name") or f"{body.get('type')}_{stream}"
    if kind not in TOXIC_ATTRS:
        raise ApiError("invalid toxic type", 400)
    if not isinstance(name, str):
        raise _bad("name must be a string")
    return Toxic(name, kind, stream.lower(), _toxicity(body.get("toxicity", 1.0)),
                 _attributes(kind, body.get("attributes"), TOXIC_ATTRS[kind]))


def updated_toxic(old: Toxic, body: object) -> Toxic:
    """Partial update as upstream: merge attributes, optionally change toxicity."""
    if not isinstance(body, dict):
        raise _bad("expected a JSON object")
    return Toxic(old.name, old.type, old.stream, _toxicity(body.get("toxicity", old.toxicity)),
                 _attributes(old.type, body.get("attributes"), old.attributes))


class _Closed(Exception):
    """Raised inside a writer once a toxic has closed the link."""


class Link:
    """One proxied client connection; ``run`` owns both sockets and returns when either side ends."""

    def __init__(self, client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[str, int], toxics: Mapping[str, Toxic]) -> None:
        self.client, self.upstream, self.toxics = client, upstream, toxics
        self.server: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.active: dict[str, Toxic] = {}  # toxics this connection drew (toxicity) and obeys
        self.timers: dict[str, asyncio.Task[None]] = {}
        self.sent: dict[str, int] = {}  # limit_data bytes passed, per toxic
        self.bw_next = {s: 0.0 for s in STREAMS}
        self.changed = asyncio.Event()
        self.writers: list[asyncio.Task[None]] = []
        self.rst = False

    async def run(self) -> None:
        (cr, cw) = self.client
        try:
            try:
                sr, sw = self.server = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                return
            for toxic in list(self.toxics.values()):
                self.toxic_added(toxic)
            qs = {s: asyncio.Queue[tuple[float, bytes] | None](maxsize=32) for s in STREAMS}
            tasks = [asyncio.create_task(self._read(cr, qs["upstream"])),
                     asyncio.create_task(self._read(sr, qs["downstream"]))]
            self.writers = [asyncio.create_task(self._write("upstream", qs["upstream"], sw)),
                            asyncio.create_task(self._write("downstream", qs["downstream"], cw))]
            try:
                await asyncio.wait(self.writers, return_when=asyncio.FIRST_COMPLETED)
            finally:
                tasks += self.writers + list(self.timers.values())
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._close(sw)
        finally:
            self._close(cw)

    def _close(self, w: asyncio.StreamWriter) -> None:
        if self.rst:  # SO_LINGER 0 makes close() send RST instead of FIN
            with contextlib.suppress(OSError, AttributeError):
                sock = w.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
        else:
            w.close()

    def close(self, rst: bool = False) -> None:
        """End the link from a toxic or the API; ``run`` does the actual teardown."""
        self.rst = self.rst or rst
        for task in self.writers:
            if task is not asyncio.current_task():
                task.cancel()

    def toxic_added(self, toxic: Toxic) -> None:
        """Draw this connection's toxicity for ``toxic``; ``run`` draws them all once connected."""
        if self.server is None or random.random() >= toxic.toxicity:
            return
        self.active[toxic.name] = toxic
        if toxic.type == "timeout" and toxic.attributes["timeout"] > 0:
            self.timers[toxic.name] = asyncio.create_task(self._timeout(toxic))
        self._wake()

    def toxic_removed(self, toxic: Toxic, cleanup: bool = True) -> None:
        if self.active.get(toxic.name) is not toxic:
            return
        del self.active[toxic.name]
        if timer := self.timers.pop(toxic.name, None):
            timer.cancel()
        if cleanup:
            self.sent.pop(toxic.name, None)
            if toxic.type == "timeout":  # data was dropped, so the stream is unusable (as upstream)
                self.close()
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def _on(self, stream: str) -> list[Toxic]:
        return [t for t in self.toxics.values()
                if t.stream == stream and self.active.get(t.name) is t]

    async def _wait(self, toxic: Toxic, until: float) -> None:
        """Sleep until ``until`` (loop time), or less if the toxic is removed meanwhile."""
        loop = asyncio.get_running_loop()
        while self.active.get(toxic.name) is toxic and (left := until - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self.changed.wait()

    async def _timeout(self, toxic: Toxic) -> None:
        await asyncio.sleep(toxic.attributes["timeout"] / 1000)
        if self.active.get(toxic.name) is toxic:
            self.close()

    @staticmethod
    async def _read(src: asyncio.StreamReader, q: asyncio.Queue[tuple[float, bytes] | None]) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            while data := await src.read(CHUNK):
                await q.put((loop.time(), data))
        await q.put(None)

    async def _write(self, stream: str, q: asyncio.Queue[tuple[float, bytes] | None],
                     dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, _Closed):
            while (item := await q.get()) is not None:
                await self._deliver(stream, *item, dst)
            loop = asyncio.get_running_loop()
            for t in self._on(stream):
                if t.type == "slow_close":
                    await self._wait(t, loop.time() + t.attributes["delay"] / 1000)

    async def _deliver(self, stream: str, stamp: float, data: bytes, dst: asyncio.StreamWriter) -> None:
        loop, toxics = asyncio.get_running_loop(), self._on(stream)
        if any(t.type == "timeout" for t in toxics):
            return  # dropped on the floor, as upstream
        for t in toxics:
            if t.type == "reset_peer":
                await self._wait(t, loop.time() + t.attributes["timeout"] / 1000)
                if self.active.get(t.name) is t:
                    self.close(rst=True)
                    raise _Closed
            elif t.type == "latency":
                a = t.attributes
                jitter = random.randint(-a["jitter"], a["jitter"]) if a["jitter"] > 0 else 0
                await self._wait(t, stamp + (a["latency"] + jitter) / 1000)
        limit = next((t for t in toxics if t.type == "limit_data"), None)
        if limit is not None:
            data = data[:max(0, limit.attributes["bytes"] - self.sent.get(limit.name, 0))]
        slicer = next((t for t in toxics if t.type == "slicer"), None)
        bandwidth = next((t for t in toxics if t.type == "bandwidth"), None)
        for piece, pause in self._pieces(data, slicer):
            if bandwidth is not None and (rate := bandwidth.attributes["rate"]) > 0:
                for off in range(0, len(piece), rate * 100):  # at most 100 ms worth per write
                    part = piece[off:off + rate * 100]
                    self.bw_next[stream] = max(loop.time(), self.bw_next[stream]) + len(part) / (rate * 1000)
                    await self._wait(bandwidth, self.bw_next[stream])
                    dst.write(part)
                    await dst.drain()
            else:
                dst.write(piece)
                await dst.drain()
            if pause:
                await asyncio.sleep(pause)
        if limit is not None:
            self.sent[limit.name] = self.sent.get(limit.name, 0) + len(data)
            if self.sent[limit.name] >= limit.attributes["bytes"]:
                self.close()
                raise _Closed

    @staticmethod
    def _pieces(data: bytes, slicer: Toxic | None) -> list[tuple[bytes, float]]:
        if slicer is None or slicer.attributes["average_size"] <= 0:
            return [(data, 0.0)] if data else []
        a, out, off = slicer.attributes, [], 0
        while off < len(data):
            var = abs(a["size_variation"])
            size = max(1, a["average_size"] + (random.randint(-var, var) if var else 0))
            out.append((data[off:off + size], a["delay"] / 1_000_000))
            off += size
        return out
