"""The loopback HTTP server that hosts COS, STS, CAM and KMS for one double account."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from .account import AccessKey, Account, Session
from .api_service import DEFAULT_ROLE_QUOTA, ApiService
from .cos_service import HOST_RE, CosService
from .faults import Faults
from .http_types import HttpRequest, HttpResponse
from .kms_service import KmsService

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    double: TencentDouble


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # One segment per response and no Nagle: avoids 40 ms delayed-ACK stalls on loopback.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("double: " + format, *args)

    def _serve(self) -> None:
        double = self.server.double
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        req = HttpRequest(
            method=self.command,
            raw_path=split.path + (f"?{split.query}" if split.query and not self._is_cos() else ""),
            query=tuple(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_ip=self.client_address[0],
        )
        if self._is_cos():
            req = HttpRequest(
                req.method, split.path, req.query, req.headers, req.body, req.client_ip
            )
        target: Literal["cos", "api"] = "cos" if self._is_cos() else "api"
        double.stats[target] += 1
        fault = double.faults.take(target)
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "drop":
                self.close_connection = True
                return
            else:
                self._write(double.fault_response(fault.status, fault.code, fault.body, target))
                return
        host = req.header("host") or ""
        match = HOST_RE.match(host)
        if match is not None:
            resp = double.cos.handle(req, match)
        elif self.command == "GET" and split.path.startswith("/.oidc/"):
            resp = double.serve_jwks(split.path)
        else:
            resp = double.api.handle(req)
        if fault is not None and fault.kind == "drop-after":
            self.close_connection = True
            return
        if fault is not None and fault.kind == "cut-body":
            self.close_connection = True
            self._write(resp, cut=True)
            return
        self._write(resp)

    def _is_cos(self) -> bool:
        return HOST_RE.match(self.headers.get("Host") or "") is not None

    def _write(self, resp: HttpResponse, *, cut: bool = False) -> None:
        """Status line, headers and body in one write (one segment on loopback); ``cut``
        sends only the first half of the body (the headers still announce all of it)."""
        self.log_request(resp.status)
        reason = self.responses.get(resp.status, ("",))[0]
        lines = [
            f"{self.protocol_version} {resp.status} {reason}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        names = {k.lower() for k, _ in resp.headers}
        lines += [f"{k}: {v}" for k, v in resp.headers]
        if "content-length" not in names:
            lines.append(f"Content-Length: {len(resp.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body = resp.body if self.command != "HEAD" else b""
        if cut:
            body = body[: len(body) // 2]
        self.wfile.write(head + body)
        self.wfile.flush()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve


class TencentDouble:
    """A local stand-in for one Tencent Cloud account: COS + STS + CAM on one loopback port.

    Use as a context manager. ``root`` holds the account's permanent API key (full rights);
    ``add_user`` creates CAM users; ``advance`` moves the credential/token clock.
    """

    def __init__(
        self,
        *,
        owner_uin: str = "100000000001",
        appid: str = "1250000000",
        region: str = "ap-guangzhou",
        json_content_type: str = "application/json",
        role_quota: int = DEFAULT_ROLE_QUOTA,
    ) -> None:
        self.account = Account(owner_uin, appid, region)
        self.cos = CosService(self.account)
        self.api = ApiService(
            self.account, json_content_type=json_content_type, role_quota=role_quota
        )
        self.faults = Faults()
        self.stats: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> TencentDouble:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.double = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            name="tencent-double",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TencentDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses ----------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(
                "the double is not running: call start() or use it as a context manager"
            )
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """``host:port`` for ``HttpProfile(endpoint=...)``."""
        return f"{self.host}:{self.port}"

    @property
    def owner_uin(self) -> str:
        return self.account.owner_uin

    @property
    def appid(self) -> str:
        return self.account.appid

    @property
    def region(self) -> str:
        return self.account.region

    @property
    def root(self) -> AccessKey:
        return self.account.root_key

    # helpers for tests --------------------------------------------------------------------
    def create_bucket(self, name: str) -> str:
        """Create a bucket directly; returns its full ``name-appid``."""
        return self.account.create_bucket(name).name

    def add_user(self, name: str) -> AccessKey:
        """A CAM sub-user with its own permanent key and no policies yet."""
        return self.account.add_user(name)

    def attach_user_policy(self, uin: str, name: str, document: dict[str, Any] | str) -> int:
        text = document if isinstance(document, str) else json.dumps(document)
        with self.account.lock:
            pol = self.account.create_policy(name, text)
            self.account.users[uin].policy_ids.append(pol.policy_id)
            return pol.policy_id

    def advance(self, seconds: float) -> None:
        """Move the credential/token clock forward (temp creds and JWTs expire by it)."""
        self.account.advance(seconds)

    def now(self) -> float:
        return self.account.now()

    @property
    def kms(self) -> KmsService:
        """The account's KMS (CMKs, and the KMS calls made, for tests)."""
        return self.api.kms

    @property
    def issued_sessions(self) -> list[Session]:
        with self.account.lock:
            return list(self.account.issued)

    def object_keys(self, bucket: str) -> list[str]:
        with self.account.lock:
            b = self.account.buckets.get(self.account.full_bucket_name(bucket))
            return sorted(b.objects) if b else []

    # internals ----------------------------------------------------------------------------
    def fault_response(self, status: int, code: str, body: str, target: str) -> HttpResponse:
        if body == "empty":
            return HttpResponse(status, (), b"")
        if target == "cos":
            xml = (
                f"<?xml version='1.0' encoding='utf-8' ?>\n<Error><Code>{code}</Code>"
                "<Message>injected fault</Message><Resource>double</Resource>"
                f"<RequestId>fault-{int(time.time() * 1000)}</RequestId></Error>"
            )
            return HttpResponse(status, (("Content-Type", "application/xml"),), xml.encode())
        return HttpResponse(status, (("Content-Type", "text/html"),), b"<html>injected</html>")

    def serve_jwks(self, path: str) -> HttpResponse:
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[2] == "jwks.json":
            with self.account.lock:
                cfg = self.account.oidc.get(parts[1])
            if cfg is not None:
                return HttpResponse(
                    200, (("Content-Type", "application/json"),), base64.b64decode(cfg.identity_key)
                )
        return HttpResponse(404, (("Content-Type", "application/json"),), b'{"error":"not found"}')

    def jwks_url(self, provider_name: str) -> str:
        return f"http://{self.endpoint}/.oidc/{provider_name}/jwks.json"
