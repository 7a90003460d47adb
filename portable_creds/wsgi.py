"""Serving a WSGI app on waitress: bounded requests, idle timeouts, graceful shutdown.

``http.server`` is a teaching server: a malformed ``Content-Length`` raises inside the handler
(a traceback and no response), a client that stops sending its body holds a thread forever,
and nothing bounds header or body sizes. The services that face other processes - the token
vendor (it holds the CAM key) and the legacy-backend double - are WSGI apps served by waitress
instead, a maintained production WSGI server chosen because its I/O model fits the threat:

* an asyncore loop reads every request *completely* (headers and body) before a worker thread
  sees it, so a stalled or slow client costs a socket, never a worker thread;
* ``max_header_bytes`` / ``max_body_bytes`` are enforced while reading (431-style 400 /
  413 answers), and malformed framing (``Content-Length: abc``) gets a 400, not a traceback;
* a connection with no progress for ``idle_timeout`` seconds - stalled in its headers, in its
  body, or idle between requests - is closed, and ``connection_limit`` caps open sockets;
* ``stop`` is graceful: stop accepting, let requests already received finish and their
  answers drain (up to ``shutdown_grace``), then close what is left.

waitress is an optional dependency (the ``serve`` extra of portable-creds, the ``vendor``
extra of portable-creds-tencent); importing this module never imports it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

import attrs

from .errors import ConfigurationError

log = logging.getLogger(__name__)

#: A WSGI application (PEP 3333), typed loosely: waitress is untyped.
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@attrs.frozen
class ServerLimits:
    """Bounds on what one client can make the server hold."""

    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 1 << 20
    idle_timeout: int = 30
    """Seconds a connection may make no progress (headers, body, or between requests)."""
    threads: int = 8
    """Worker threads running the app; they only ever see complete requests."""
    connection_limit: int = 256
    shutdown_grace: float = 10.0
    """Seconds ``stop`` waits for requests in flight before closing connections."""


def _waitress() -> Any:
    try:
        import waitress.server
    except ImportError:
        raise ConfigurationError(
            "serving needs the waitress WSGI server: pip install 'portable-creds[serve]' "
            "(or 'portable-creds-tencent[vendor]' for the token vendor)"
        ) from None
    return waitress.server


class WsgiServer:
    """``with WsgiServer(app) as srv: srv.url`` - one WSGI app on waitress, in a thread."""

    def __init__(
        self,
        app: WsgiApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits | None = None,
        name: str = "wsgi",
    ) -> None:
        self.limits = limits or ServerLimits()
        self._name = name
        self._server: Any = _waitress().create_server(
            app,
            host=host,
            port=port,
            threads=self.limits.threads,
            connection_limit=self.limits.connection_limit,
            channel_timeout=self.limits.idle_timeout,
            # How often idle connections are looked for: never later than the timeout.
            cleanup_interval=max(1, min(30, self.limits.idle_timeout)),
            max_request_header_size=self.limits.max_header_bytes,
            max_request_body_size=self.limits.max_body_bytes,
            expose_tracebacks=False,
            ident=name,
            asyncore_use_poll=True,
            asyncore_loop_timeout=1,
        )
        self._host = host
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._server.effective_port}"

    def start(self) -> Self:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._server.run, name=self._name, daemon=True)
            self._thread.start()
        return self

    # -- graceful shutdown ------------------------------------------------------------------

    def _in_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the server's I/O thread (waitress's sockets are not thread-safe).

        If that loop has already ended (its trigger closed with it: seen as EBADF when a
        shutdown raced the loop's own exit), there is no other thread left to race, so ``fn``
        runs here; closing what is already closed is not an error at shutdown.
        """
        if self._thread is not None and self._thread.is_alive():
            try:
                self._server.trigger.pull_trigger(fn)
                return
            except OSError:
                pass
        with contextlib.suppress(OSError):
            fn()

    def _channels(self) -> list[Any]:
        return [
            d
            for d in list(self._server._map.values())
            if d is not self._server and d is not self._server.trigger
        ]

    def _busy(self) -> bool:
        dispatcher = self._server.task_dispatcher
        if dispatcher.active_count or dispatcher.queue:
            return True
        return any(c.requests or c.total_outbufs_len for c in self._channels())

    def stop(self) -> None:
        """Stop accepting, let received requests finish (bounded), then close everything."""
        if self._stopped:
            return
        self._stopped = True
        server = self._server
        if self._thread is None:  # never started: nothing in flight
            server.close()
            server.task_dispatcher.shutdown(timeout=1)
            return
        # 1. No new connections (the listening socket closes in the I/O thread).
        self._in_loop(lambda: _close_listener(server))
        # 2. Requests already received run to completion and their answers drain.
        deadline = time.monotonic() + self.limits.shutdown_grace
        while self._busy() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._busy():
            log.warning(
                "%s: closing with requests still in flight after %.0fs",
                self._name,
                self.limits.shutdown_grace,
            )

        # 3. Close the remaining (idle or stalled) connections; the loop ends with its map.
        def close_all() -> None:
            for channel in self._channels():
                channel.close()
            server.trigger.close()

        self._in_loop(close_all)
        self._thread.join(timeout=self.limits.shutdown_grace + 5)
        server.task_dispatcher.shutdown(timeout=1)
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM, then stop gracefully."""
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            while not stop.wait(0.5):
                if self._thread is None or not self._thread.is_alive():
                    break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _close_listener(server: Any) -> None:
    """Close only the listening socket (``server.close`` would also close the trigger)."""
    import waitress.wasyncore

    waitress.wasyncore.dispatcher.close(server)


# -- small WSGI helpers shared by the apps ---------------------------------------------------


def request_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers, names lowercased (``authorization``, ``content-type``...)."""
    out = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        out["content-type"] = str(environ["CONTENT_TYPE"])
    return out


def request_body(environ: dict[str, Any]) -> bytes:
    """The whole body (already buffered and size-checked by the server)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(environ["wsgi.input"].read(length)) if length > 0 else b""
