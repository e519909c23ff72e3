"""Serving /metrics: address checks, the port probe and prometheus-client's threading WSGI server.

Used by :class:`~lightning_green.exporters.prometheus.PrometheusExporter`; prometheus-client is
imported by the caller (it is an optional extra), the server class is passed in.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

__all__ = ["bind_error", "env_local_rank", "make_server", "probe_port", "resolve"]


def env_local_rank() -> int:
    """The local rank a launcher already announced (torchrun, Lightning's children), else 0."""
    try:
        return max(0, int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        return 0


def resolve(addr: str, port: int) -> tuple[int, tuple]:
    """(address family, socket address) to bind ``addr:port``, or ValueError naming ``addr``."""
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"addr must be an address of this machine such as '127.0.0.1' or '0.0.0.0', "
                         f"got {addr!r} ({exc})") from exc
    return family, sockaddr


def bind_error(addr: str, port: int, base: int, local_rank: int, exc: OSError) -> ValueError:
    where = f"port {port}" + (f" (port={base} + local_rank {local_rank})" if port != base else "")
    return ValueError(f"PrometheusExporter cannot serve on {addr}:{port}: {where} is not available "
                      f"({exc.strerror or exc}); pass another port=..., each process uses port + local_rank")


def probe_port(addr: str, port: int, base: int, local_rank: int) -> None:
    """Bind ``addr:port`` and let go at once, or raise ValueError naming the port."""
    family, sockaddr = resolve(addr, port)
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server does
        probe.bind(sockaddr)
    except OSError as exc:
        raise bind_error(addr, port, base, local_rank, exc) from exc
    finally:
        probe.close()


def make_server(base: type, family: int, addr: str, port: int, app: Any) -> Any:
    """prometheus-client's threading WSGI server, quiet, with named and joinable request threads."""
    from wsgiref.simple_server import WSGIRequestHandler
    from wsgiref.simple_server import make_server as wsgi_server

    class QuietHandler(WSGIRequestHandler):
        timeout = 10.0  # a client that stalls cannot hold a request thread for long

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(base):
        address_family = family
        daemon_threads = True

        def process_request(self, request: Any, client_address: Any) -> None:
            thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                      name=f"lightning-green-prometheus-{self.server_port}-request", daemon=True)
            self._requests = [t for t in getattr(self, "_requests", []) if t.is_alive()] + [thread]
            thread.start()

        def join_requests(self, timeout_s: float) -> None:
            for thread in getattr(self, "_requests", []):
                thread.join(timeout_s)

    return wsgi_server(addr, port, app, Server, handler_class=QuietHandler)
