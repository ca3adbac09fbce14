"""The HTTP server under the REST app: uvicorn (h11), plus the read deadline uvicorn lacks.

uvicorn bounds only the idle time between keep-alive requests, so a client sending its headers (or a body no
handler reads) a byte at a time would hold a connection forever. `DeadlineH11Protocol` gives every request
`read_timeout_s` (`--rest-api-timeout-in-ms`) from its first byte (or from the connection's opening) to arrive
completely: a request whose headers are still incomplete then gets 408 and the connection is closed; one whose
body is still arriving is closed once the app has answered (the app's own body-read deadline answers it).
Also the listening socket (`listen`) and `build_server`, which leaves signal handling to `serving.server.cli`.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


class DeadlineH11Protocol(H11Protocol):
    read_timeout_s: float = 30.0  # set per server by `build_server`

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._read_timer: asyncio.TimerHandle | None = None
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of a new request
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()

    def _arm(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:  # headers incomplete: nobody has answered yet
            body = json.dumps({"error": f"request headers not received within {self.read_timeout_s:g}s "
                                        f"(--rest-api-timeout-in-ms)"}).encode()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            self.transport.close()
        elif self.conn.their_state is h11.SEND_BODY:
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()  # answered already; the rest of the body is not wanted
            else:
                self.cycle.keep_alive = False  # close once the app has answered


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP, and
    # without it small keep-alive responses wait ~40 ms for the client's delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # serving.server.cli's handlers also stop gRPC and the manager
        yield


def build_server(app, read_timeout_s: float | None) -> uvicorn.Server:
    """A uvicorn server for `app` whose requests must arrive within `read_timeout_s` (None: 30 s)."""
    protocol = type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"read_timeout_s": read_timeout_s or 30.0})
    return _Server(uvicorn.Config(app, http=protocol, log_level="warning", access_log=False, lifespan="off",
                                  timeout_graceful_shutdown=10, timeout_keep_alive=30))
