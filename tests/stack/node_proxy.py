"""An HTTP CONNECT proxy that brings kube-apiserver's connections to the nodes' kubelet port to kwok.

The stack's nodes have addresses in the VPC's CIDR, which the host cannot
reach; kube-apiserver connects to ``https://<node address>:<kubelet port>``
for ``pods/log``, exec and port-forward. Started with
``HTTPS_PROXY=http://127.0.0.1:<proxy port>`` (and ``NO_PROXY`` for loopback
and the service CIDR), kube-apiserver asks this proxy to ``CONNECT`` to the
node; for a port of ``ports`` the proxy connects to that port on loopback,
where kwok's kubelet server listens (``--node-port``, ``--server-address
127.0.0.1:<port>``), whatever the node's address. Other ports are refused, so
nothing else leaves through the proxy.

    python node_proxy.py --listen 127.0.0.1:PORT --port KWOK_PORT [--port ...]

``NodeProxy(ports).start()`` runs it in a thread (for tests); ``close()`` stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import selectors
import socket
import socketserver
import sys
import threading

LOG = logging.getLogger("layered.stack.node_proxy")
MAX_HEADER = 16 * 1024


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client = self.request
        client.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > MAX_HEADER:
                return
            head += chunk
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or parts[0].upper() != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port_text = parts[1].rpartition(":")
        try:
            port = int(port_text)
        except ValueError:
            port = -1
        if port not in self.server.ports:
            LOG.warning("refused CONNECT %s", parts[1])
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((self.server.target_host, port), timeout=10)
        except OSError as exc:
            LOG.warning("CONNECT %s: %s", parts[1], exc)
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        LOG.debug("CONNECT %s -> %s:%d", host, self.server.target_host, port)
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            _splice(client, upstream)


def _splice(a: socket.socket, b: socket.socket) -> None:
    a.settimeout(None)
    b.settimeout(None)
    peers = {a: b, b: a}
    with selectors.DefaultSelector() as sel:
        sel.register(a, selectors.EVENT_READ)
        sel.register(b, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                sock = key.fileobj
                try:
                    data = sock.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    return
                if not data:
                    return
                try:
                    peers[sock].sendall(data)  # type: ignore[index]
                except OSError:
                    return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], ports: set[int], target_host: str) -> None:
        self.ports = ports
        self.target_host = target_host
        super().__init__(address, _Handler)


class NodeProxy:
    """The proxy on ``listen`` (port 0: any free port), sending CONNECTs for ``ports`` to ``target_host``."""

    def __init__(self, ports: set[int] | list[int], listen: str = "127.0.0.1:0", target_host: str = "127.0.0.1"):
        host, _, port = listen.rpartition(":")
        self._server = _Server((host, int(port)), set(ports), target_host)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> NodeProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="node-proxy")
        self._thread.start()
        return self

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="address:port to listen on")
    parser.add_argument("--port", type=int, action="append", required=True, help="kubelet port to forward")
    parser.add_argument("--target-host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    proxy = NodeProxy(args.port, args.listen, args.target_host)
    print(f"listening on {proxy.url}", flush=True)
    try:
        proxy._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        proxy._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
