"""The one lifecycle every local test server shares: a threaded HTTP server on loopback.

Subclasses pass their request handler; ``start``/``stop``, the context manager, ``url`` and
``serve_forever`` (for ``python -m ...`` entry points) are the same for all of them.

This ``http.server`` flavour is for the signer and OIDC doubles, which only ever talk to the
test's own clients. Servers that stand in for (or are) services facing other processes - the
legacy-backend double, the token vendor - use ``portable_creds.wsgi.WsgiServer`` instead: the
same lifecycle API on waitress, with request limits, idle timeouts and graceful shutdown.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class LoopbackHTTPServer:
    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "loopback-http",
    ) -> None:
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._name = name

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},  # fast shutdown between tests
                name=self._name,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C (the ``python -m`` entry points)."""
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
