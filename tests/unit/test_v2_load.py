"""A restore writes v2 keys over several kept-alive connections at once; directories (empty or
with a TTL) first, so that no key creates its parent without that parent's TTL."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from etcdmgr.etcd.errors import EtcdError
from etcdmgr.etcd.http import V2Node
from etcdmgr.etcd.v2_load import put_v2_keys


class FakeV2(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as etcd
    puts: list[tuple[str, dict[str, str]]] = []
    connections: set[int] = set()

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        fields = dict(urllib.parse.parse_qsl(body.decode()))
        key = urllib.parse.unquote(self.path.removeprefix("/v2/keys"))
        FakeV2.puts.append((key, fields))
        FakeV2.connections.add(id(self.connection))
        status, reply = (400, {"message": "refused"}) if "bad" in key else (201, {"action": "set"})
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # etcd's backlog is large: every worker connects at once


@pytest.fixture
def endpoint() -> Iterator[str]:
    FakeV2.puts, FakeV2.connections = [], set()
    server = Server(("127.0.0.1", 0), FakeV2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_directories_first_then_every_key_over_a_few_connections(endpoint: str) -> None:
    keys = [V2Node(f"/ttl/k{i:04d}", f"v{i}", None) for i in range(500)]
    nodes = [V2Node("/ttl", None, 30), *keys, V2Node("/empty", None, None), V2Node("/t", "x y&z", 5)]
    assert await put_v2_keys(endpoint, nodes, None, 5.0) == len(nodes)
    written = [key for key, _ in FakeV2.puts]
    assert written[:2] == ["/ttl", "/empty"]
    assert sorted(written[2:]) == sorted(n.key for n in nodes if n.value is not None)
    assert dict(FakeV2.puts)["/ttl"] == {"dir": "true", "ttl": "30"}
    assert dict(FakeV2.puts)["/t"] == {"value": "x y&z", "ttl": "5"}
    assert len(FakeV2.connections) <= 33  # kept alive: one per worker, not one per key


async def test_the_first_refused_key_stops_the_load_with_etcds_message(endpoint: str) -> None:
    nodes = [V2Node(f"/k{i:04d}", "v", None) for i in range(200)] + [V2Node("/bad", "v", None)]
    with pytest.raises(EtcdError, match="v2 put /bad: HTTP 400: refused"):
        await put_v2_keys(endpoint, nodes, None, 5.0)
