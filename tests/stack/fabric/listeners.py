"""The servers the local VPC's endpoints answer with, each on a socket opened inside a namespace.

* ``Forwarder``: a TCP listener (the database's address and port) whose connections are carried,
  byte for byte, to a server on the host's loopback (the local PostgreSQL). TLS stays end to end.
* ``Forwarder`` with a server-side TLS context: the public AWS endpoint and interface VPC
  endpoints, on port 443 with a certificate for ``*.amazonaws.com`` names; the decrypted HTTP is
  carried to the local AWS endpoint (moto), which routes by the Host header and the signature.
* ``DnsServer``: A records over UDP and TCP, as CoreDNS answers pods: names it knows resolve,
  others get NXDOMAIN.

Connections out of the namespaces are made by threads that never entered one, so they reach the
host's loopback. Every thread is a daemon; ``close()`` stops the listener.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Callable

log = logging.getLogger("fabric.listeners")


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class Forwarder:
    """Accept on ``sock``; carry each connection to ``upstream`` (host, port) on the host."""

    def __init__(
        self, sock: socket.socket, upstream: tuple[str, int], name: str, tls: ssl.SSLContext | None = None
    ) -> None:
        self.sock = sock
        self.upstream = upstream
        self.name = name
        self.tls = tls
        self._closed = False
        threading.Thread(target=self._accept, name=f"fwd-{name}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, peer), daemon=True).start()

    def _serve(self, client: socket.socket, peer: tuple[str, int]) -> None:
        try:
            if self.tls is not None:
                client.settimeout(10)
                client = self.tls.wrap_socket(client, server_side=True)
                client.settimeout(None)
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
        except (OSError, ssl.SSLError) as exc:
            log.info("%s: connection from %s dropped: %s", self.name, peer[0], exc)
            with contextlib.suppress(OSError):
                client.close()
            return
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


# ---------------------------------------------------------------- DNS
QTYPE_A = 1
RCODE_NXDOMAIN = 3
TTL = 5


def parse_question(query: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, name, qtype, end offset of the question) of a DNS query."""
    if len(query) < 12:
        raise ValueError("short DNS message")
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if qdcount != 1:
        raise ValueError("one question expected")
    labels = []
    pos = 12
    while True:
        length = query[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed question name")
        labels.append(query[pos : pos + length].decode("ascii"))
        pos += length
    qtype, _qclass = struct.unpack("!HH", query[pos : pos + 4])
    return ident, flags, ".".join(labels).lower(), qtype, pos + 4


def answer(query: bytes, resolve: Callable[[str], list[str] | None]) -> bytes:
    """The response to ``query``: A records from ``resolve(name)``; None means NXDOMAIN."""
    ident, flags, name, qtype, end = parse_question(query)
    addresses = resolve(name)
    rcode = RCODE_NXDOMAIN if addresses is None else 0
    records = [a for a in addresses or [] if qtype == QTYPE_A]
    # QR, the query's opcode and RD, AA and RA
    out_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
    header = struct.pack("!HHHHHH", ident, out_flags, 1, len(records), 0, 0)
    body = query[12:end]
    for address in records:
        body += struct.pack("!HHHIH", 0xC00C, QTYPE_A, 1, TTL, 4) + socket.inet_aton(address)
    return header + body


class DnsServer:
    def __init__(
        self, udp: socket.socket, tcp: socket.socket, resolve: Callable[[str], list[str] | None], name: str
    ) -> None:
        self.udp = udp
        self.tcp = tcp
        self.resolve = resolve
        self.name = name
        threading.Thread(target=self._udp, name=f"dns-udp-{name}", daemon=True).start()
        threading.Thread(target=self._tcp, name=f"dns-tcp-{name}", daemon=True).start()

    def _reply(self, query: bytes) -> bytes | None:
        try:
            return answer(query, self.resolve)
        except (ValueError, IndexError, UnicodeDecodeError, struct.error) as exc:
            log.info("%s: malformed query: %s", self.name, exc)
            return None

    def _udp(self) -> None:
        while True:
            try:
                query, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            reply = self._reply(query)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self.udp.sendto(reply, peer)

    def _tcp(self) -> None:
        while True:
            try:
                client, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_client, args=(client,), daemon=True).start()

    def _tcp_client(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            client.settimeout(10)
            try:
                while True:
                    head = client.recv(2)
                    if len(head) < 2:
                        return
                    (length,) = struct.unpack("!H", head)
                    query = b""
                    while len(query) < length:
                        chunk = client.recv(length - len(query))
                        if not chunk:
                            return
                        query += chunk
                    reply = self._reply(query)
                    if reply is None:
                        return
                    client.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    def close(self) -> None:
        for s in (self.udp, self.tcp):
            with contextlib.suppress(OSError):
                s.close()
