"""The embedded Toxiproxy-compatible server, driven by the real toxiproxy-python client and raw HTTP.

Timing assertions are real (loopback round trips are < 5 ms, toxics add hundreds), so a toxic
that does nothing fails its test. A loaded machine only adds delay: a lower bound holds on every
sample, while an upper bound is judged on the fastest of several (``fastest``), never one.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from toxiproxy import Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from pgproof.faults import toxiproxy as faults
from pgproof.procs import free_ports, log_tail

ROOT = Path(__file__).resolve().parents[1]


class _Echo(socketserver.BaseRequestHandler):
    """Echo every chunk; a chunk containing CLOSE makes the server close the connection."""

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                if b"CLOSE" in data:
                    return
                self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    srv = _Server(("127.0.0.1", free_ports(1)[0]), _Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_ports(1)[0]
    log = tmp_path_factory.mktemp("toxiproxy") / "server.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgproof.proxy.server", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/version", timeout=1).ok:
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"toxiproxy server did not answer GET {url}/version within 10 s "
                        f"(exit code {proc.poll()}):\n{log_tail(log)}")
        time.sleep(0.05)
    yield url
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0, f"unclean shutdown on SIGTERM:\n{log_tail(log)}"
    text = log.read_text()
    for bad in ("Traceback", "leaked", "exception was never retrieved", "Exception in callback"):
        assert bad not in text, f"server log shows {bad!r}:\n{text[-3000:]}"
    assert text.rstrip().endswith("shut down"), log_tail(log)


@pytest.fixture
def api(server: str) -> Iterator[str]:
    """Each test starts and ends with no proxies."""
    yield server
    for name in requests.get(server + "/proxies", timeout=5).json():
        requests.delete(f"{server}/proxies/{name}", timeout=5)


@pytest.fixture
def client(api: str) -> Toxiproxy:
    tp = Toxiproxy()
    tp.update_api_consumer("127.0.0.1", int(api.rsplit(":", 1)[1]))
    return tp


def make_proxy(api: str, upstream: str, name: str = "pg") -> int:
    r = requests.post(api + "/proxies", json={"name": name, "upstream": upstream,
                                              "listen": "127.0.0.1:0"}, timeout=5)
    assert r.status_code == 201, r.text
    return int(r.json()["listen"].rsplit(":", 1)[1])


def add_toxic(api: str, proxy: str, body: dict) -> dict:
    r = requests.post(f"{api}/proxies/{proxy}/toxics", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def round_trip(s: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        assert chunk, "connection closed during round trip"
        got += chunk
    assert got == payload
    return time.monotonic() - start


def fastest(s: socket.socket, payload: bytes = b"ping", n: int = 5) -> float:
    """The quickest of ``n`` round trips: what the proxy adds, minus the scheduler's noise."""
    return min(round_trip(s, payload) for _ in range(n))


def time_to_eof(s: socket.socket) -> float:
    start = time.monotonic()
    while s.recv(65536):
        pass
    return time.monotonic() - start


# --- API through the real client -------------------------------------------------------------

def test_client_proxy_lifecycle(client: Toxiproxy, echo: str) -> None:
    assert client.running() and b'"version"' in client.version()
    proxy = client.create(upstream=echo, name="pg")
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    with pytest.raises(ProxyExists):
        client.create(upstream=echo, name="pg")
    assert set(client.proxies()) == {"pg"} and client.get_proxy("pg").upstream == echo
    proxy.disable()
    assert client.get_proxy("pg").enabled is False
    with proxy.down():
        assert client.get_proxy("pg").enabled is False
    assert client.get_proxy("pg").enabled is True
    assert client.get_proxy("pg").listen == proxy.listen  # re-listened on the same port
    with connect(int(proxy.listen.rsplit(":", 1)[1])) as s:
        assert round_trip(s) < 0.5
    assert client.destroy(proxy) and client.get_proxy("pg") is None
    with pytest.raises(NotFound):
        proxy.destroy()


def test_client_toxics_and_reset(client: Toxiproxy, echo: str) -> None:
    proxy = client.create(upstream=echo, name="pg")
    proxy.add_toxic(type="latency", attributes={"latency": 50, "jitter": 5})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="bw", toxicity=0.5,
                    attributes={"rate": 1000})
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "bw"}
    assert toxics["latency_downstream"].attributes == {"latency": 50, "jitter": 5}
    assert (toxics["bw"].stream, toxics["bw"].toxicity) == ("upstream", 0.5)
    assert proxy.destroy_toxic("bw") and set(proxy.toxics()) == {"latency_downstream"}
    proxy.disable()
    assert client.reset()
    assert client.get_proxy("pg").enabled is True and proxy.toxics() == {}


def test_populate(client: Toxiproxy, api: str, echo: str) -> None:
    created = client.populate([{"name": "a", "upstream": echo, "listen": "127.0.0.1:0"}])
    assert [p.name for p in created] == ["a"]
    r = requests.post(api + "/populate", timeout=5, json=[
        {"name": "a", "upstream": echo, "listen": created[0].listen},  # unchanged: kept
        {"name": "b", "upstream": echo, "listen": "127.0.0.1:0", "enabled": False}])
    assert r.status_code == 201, r.text
    out = {p["name"]: p for p in r.json()["proxies"]}
    assert out["a"]["listen"] == created[0].listen and out["b"]["enabled"] is False
    assert set(client.proxies()) == {"a", "b"}
    r = requests.post(api + "/populate", json=[{"name": "c"}], timeout=5)
    assert (r.status_code, r.json()["error"]) == (400, "missing required field: upstream at proxy 1")


def test_status_codes_and_error_bodies(api: str, echo: str) -> None:
    def call(method: str, path: str, body: object = None, raw: str | None = None) -> requests.Response:
        return requests.request(method, api + path, json=body, data=raw, timeout=5)

    def err(resp: requests.Response, status: int, msg: str) -> None:
        assert resp.status_code == status, resp.text
        assert resp.json() == {"error": msg, "status": status}

    assert call("GET", "/version").json() == {"version": "2.12.0+pgproof"}
    err(call("POST", "/proxies", {"upstream": echo}), 400, "missing required field: name")
    err(call("POST", "/proxies", {"name": "x"}), 400, "missing required field: upstream")
    err(call("POST", "/proxies", raw="{nope"), 400,
        "bad request body: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")
    make_proxy(api, echo)
    err(call("POST", "/proxies", {"name": "pg", "upstream": echo}), 409, "proxy already exists")
    err(call("GET", "/proxies/nope"), 404, "proxy not found")
    err(call("DELETE", "/proxies/nope"), 404, "proxy not found")
    err(call("GET", "/proxies/nope/toxics"), 404, "proxy not found")
    err(call("POST", "/proxies/pg/toxics", {"type": "bogus"}), 400, "invalid toxic type")
    err(call("POST", "/proxies/pg/toxics", {"type": "latency", "stream": "sideways"}), 400,
        "stream was invalid, can be either upstream or downstream")
    assert call("POST", "/proxies/pg/toxics", {"type": "timeout"}).json() == {
        "name": "timeout_downstream", "type": "timeout", "stream": "downstream", "toxicity": 1.0,
        "attributes": {"timeout": 0}}
    err(call("POST", "/proxies/pg/toxics", {"type": "timeout"}), 409, "toxic already exists")
    err(call("GET", "/proxies/pg/toxics/nope"), 404, "toxic not found")
    err(call("DELETE", "/proxies/pg/toxics/nope"), 404, "toxic not found")
    add_toxic(api, "pg", {"type": "slicer", "attributes": {"average_size": 10, "delay": 5}})
    r = call("POST", "/proxies/pg/toxics/slicer_downstream", {"toxicity": 0.25,
                                                             "attributes": {"delay": 7}})
    assert r.status_code == 200 and r.json()["toxicity"] == 0.25
    assert call("GET", "/proxies/pg/toxics/slicer_downstream").json()["attributes"] == {
        "average_size": 10, "size_variation": 0, "delay": 7}
    assert [t["name"] for t in call("GET", "/proxies/pg/toxics").json()] == [
        "timeout_downstream", "slicer_downstream"]
    assert call("DELETE", "/proxies/pg/toxics/timeout_downstream").status_code == 204
    r = call("PATCH", "/proxies/pg", {"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert call("POST", "/reset").status_code == 204
    assert call("GET", "/proxies/pg").json()["toxics"] == []
    assert call("DELETE", "/proxies/pg").status_code == 204
    assert call("GET", "/nothing").status_code == 404
    assert call("DELETE", "/version").status_code == 405


# --- toxics really act on the TCP stream -----------------------------------------------------

def test_latency_with_jitter(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    with connect(port) as s:
        assert fastest(s) < 0.05
        add_toxic(api, "pg", {"type": "latency", "attributes": {"latency": 200}})
        assert round_trip(s) >= 0.2 and fastest(s, n=3) < 0.4
        requests.post(f"{api}/proxies/pg/toxics/latency_downstream", timeout=5,
                      json={"attributes": {"latency": 150, "jitter": 100}})
        samples = [round_trip(s) for _ in range(6)]
    assert all(t >= 0.05 for t in samples), samples
    assert sorted(samples)[len(samples) // 2] < 0.35, samples
    assert max(samples) - min(samples) > 0.02, f"jitter did not vary the delay: {samples}"


def test_toxic_added_and_removed_on_open_connection(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    with connect(port) as s:
        assert fastest(s) < 0.05
        add_toxic(api, "pg", {"type": "latency", "stream": "upstream", "attributes": {"latency": 300}})
        assert round_trip(s) >= 0.3
        requests.delete(f"{api}/proxies/pg/toxics/latency_upstream", timeout=5)
        assert fastest(s) < 0.05


def test_toxicity_zero_spares_connections(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    add_toxic(api, "pg", {"type": "latency", "toxicity": 0.0, "attributes": {"latency": 500}})
    with connect(port) as s:
        assert fastest(s) < 0.05


def test_timeout_stops_data_then_closes(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    with connect(port) as held:
        add_toxic(api, "pg", {"type": "timeout", "name": "forever", "attributes": {"timeout": 0}})
        held.sendall(b"lost")
        held.settimeout(0.4)
        with pytest.raises(TimeoutError):
            held.recv(10)
        requests.delete(f"{api}/proxies/pg/toxics/forever", timeout=5)
        held.settimeout(2)
        assert time_to_eof(held) < 0.5  # upstream closes streams that lost data
    with connect(port) as closed:
        add_toxic(api, "pg", {"type": "timeout", "attributes": {"timeout": 400}})
        start = time.monotonic()
        closed.sendall(b"lost")
        assert closed.recv(10) == b""
        assert 0.3 <= time.monotonic() - start < 1.0


def test_reset_peer(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    add_toxic(api, "pg", {"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 200}})
    with connect(port) as s:
        s.sendall(b"boom")
        start = time.monotonic()
        with pytest.raises(ConnectionResetError):
            s.recv(10)
        assert time.monotonic() - start >= 0.18


def test_bandwidth(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    payload = bytes(100_000)
    with connect(port) as s:
        assert fastest(s, payload, n=3) < 0.2
        add_toxic(api, "pg", {"type": "bandwidth", "attributes": {"rate": 200}})  # 200 KB/s
        assert 0.45 <= round_trip(s, payload) < 1.5


def test_slow_close(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    plain = []
    for _ in range(3):  # the quickest of three closes: without the toxic it is immediate
        with connect(port) as s:
            s.sendall(b"CLOSE")
            plain.append(time_to_eof(s))
    assert min(plain) < 0.1, plain
    add_toxic(api, "pg", {"type": "slow_close", "attributes": {"delay": 400}})
    with connect(port) as s:
        s.sendall(b"CLOSE")
        assert 0.4 <= time_to_eof(s) < 1.0


def test_limit_data(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    add_toxic(api, "pg", {"type": "limit_data", "attributes": {"bytes": 100}})
    with connect(port) as s:
        s.sendall(b"x" * 300)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert got == b"x" * 100


def test_slicer(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    add_toxic(api, "pg", {"type": "slicer", "attributes": {"average_size": 10, "delay": 20_000}})
    with connect(port) as s:
        s.sendall(b"y" * 100)
        start, first = time.monotonic(), s.recv(65536)
        got = first
        while len(got) < 100:
            got += s.recv(65536)
    assert got == b"y" * 100 and len(first) < 50
    assert time.monotonic() - start >= 0.15  # 10 slices, 20 ms apart


def test_disable_drops_open_and_refuses_new(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    with connect(port) as s:
        assert fastest(s) < 0.05
        requests.post(f"{api}/proxies/pg", json={"enabled": False}, timeout=5)
        with contextlib.suppress(ConnectionResetError):
            assert time_to_eof(s) < 0.5
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    requests.post(f"{api}/proxies/pg", json={"enabled": True}, timeout=5)
    with connect(port) as s:
        assert fastest(s) < 0.05


def test_many_concurrent_connections(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    add_toxic(api, "pg", {"type": "latency", "attributes": {"latency": 100}})
    socks = [connect(port) for _ in range(150)]
    try:
        start = time.monotonic()
        for i, s in enumerate(socks):
            s.sendall(b"%d" % i)
        for i, s in enumerate(socks):
            assert s.recv(16) == b"%d" % i
        assert 0.1 <= time.monotonic() - start < 1.5  # latency is pipelined, not serialised
    finally:
        for s in socks:
            s.close()
    requests.delete(f"{api}/proxies/pg", timeout=5)  # drops nothing left; must not hang
    assert requests.get(api + "/proxies", timeout=5).json() == {}


# --- pgproof.faults.toxiproxy ----------------------------------------------------------------

def test_fault_latency_applies_and_undoes_on_exception(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    with connect(port) as s:
        with pytest.raises(ValueError, match="boom"), faults.latency(api, "pg", 200):
            assert round_trip(s) >= 0.2
            assert any("latency" in f for f in faults.active_faults(api))
            raise ValueError("boom")
        assert faults.active_faults(api) == []
        assert fastest(s) < 0.05


def test_fault_down_undoes_on_keyboard_interrupt(api: str, echo: str) -> None:
    make_proxy(api, echo, "a")
    port = make_proxy(api, echo, "b")
    with pytest.raises(KeyboardInterrupt), faults.down(api, ["a", "b"]):
        assert sorted(faults.active_faults(api)) == [
            f"proxy a (127.0.0.1:{make_port(api, 'a')} -> {echo}) is disabled",
            f"proxy b (127.0.0.1:{port} -> {echo}) is disabled"]
        with pytest.raises(ConnectionRefusedError):
            connect(port)
        raise KeyboardInterrupt
    assert faults.active_faults(api) == []
    with connect(port) as s:
        assert fastest(s) < 0.05


def test_set_enabled_closes_and_reopens_each_proxy(api: str, echo: str) -> None:
    """What the lab's cloud bridges call when a twin's firewall rules change."""
    ports = [make_proxy(api, echo, "writer"), make_proxy(api, echo, "reader")]
    faults.set_enabled(api, ["writer", "reader"], False)
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            connect(port)
    faults.set_enabled(api, ["writer", "reader"], False)  # idempotent
    faults.set_enabled(api, ["writer", "reader"], True)
    for port in ports:
        with connect(port) as s:
            assert fastest(s) < 0.05
    with pytest.raises(faults.ToxiproxyError):
        faults.set_enabled(api, ["nosuch"], False)


def make_port(api: str, name: str) -> int:
    return int(requests.get(f"{api}/proxies/{name}", timeout=5).json()["listen"].rsplit(":", 1)[1])


def test_fault_timeout_with_undo_stack(api: str, echo: str) -> None:
    port = make_proxy(api, echo)
    with contextlib.ExitStack() as stack:
        with faults.timeout(api, "pg", 0, undo_stack=stack), connect(port) as s:
            s.sendall(b"x")
            s.settimeout(0.3)
            with pytest.raises(TimeoutError):
                s.recv(10)
        assert faults.active_faults(api) == []
        held = faults.latency(api, "pg", 100, undo_stack=stack)
        held.__enter__()  # entered but never exited: only the caller's stack can undo it
        assert len(faults.active_faults(api)) == 1
    assert faults.active_faults(api) == []  # the caller's stack undid it
    held.__exit__(None, None, None)  # a late exit is a no-op: undo runs at most once


def test_fault_undo_failure_is_raised_with_manual_fix(api: str, echo: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    make_proxy(api, echo)

    def unreachable(*_a: object, **_k: object) -> None:
        raise requests.ConnectionError("API unreachable")

    with pytest.raises(faults.FaultUndoError) as info, faults.latency(api, "pg", 50):
        monkeypatch.setattr(faults.requests, "request", unreachable)
    monkeypatch.undo()
    msg = str(info.value)
    assert "still broken" in msg and "curl -X DELETE " + api + "/proxies/pg/toxics/pgproof_latency" in msg
    assert len(faults.active_faults(api)) == 1
    faults.reset(api)
    assert faults.active_faults(api) == []
