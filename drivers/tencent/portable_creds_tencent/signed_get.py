"""GET Object on COS, signed here instead of by cos-python-sdk-v5: the read a cold ``get`` makes.

Why not the SDK for this one request: importing it (and requests under it) is most of a fresh
``portable-creds get`` process on ``cos://`` (issue 13; measured in bench/bench_cli.py), and an
agent runs ``get`` once per task. GET Object is a single request with two signed headers, so the
SDK buys nothing there. Every other COS call (writes, HEAD, listings, deletes, bucket settings)
still goes through the SDK, which is then imported on first use.

What keeps this faithful to the SDK and the service:

- the signature is COS's documented request signature (cloud.tencent.com/document/product/436/
  7778), byte for byte what the SDK's ``CosS3Auth`` computes for the same request, and the URL,
  ``Host`` and ``x-cos-security-token`` are what ``CosS3Client.get_object`` sends
  (tests/tencent/test_signed_get.py compares both against the installed SDK);
- TLS verifies against the CA bundle requests would use (``REQUESTS_CA_BUNDLE``,
  ``CURL_CA_BUNDLE``, else certifi's); redirects are never followed;
- what this module does not do, the SDK does: with a proxy configured in the environment, or a
  legacy region name whose domain the SDK spells differently, ``usable_for`` says no and the
  store reads through the SDK as before; ``sdk_reads=true`` on the URL asks for that always.

Errors are mapped by ``errors.cos_status_error``, the same function that maps the SDK's
exceptions, so a refusal reads the same whichever path made the request.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import re
import ssl
import threading
import time
from collections.abc import Mapping
from urllib.parse import quote

from portable_creds.driver import StoredObject, TemporaryCredentials, check_object_size
from portable_creds.errors import PortableCredsError

from .errors import cos_network_error, cos_status_error
from .settings import CosSettings

SIGNATURE_LIFETIME = 600
"""Seconds an ``Authorization`` header stays valid (the SDK's default is 10,000): long enough for
any clock skew COS tolerates, short if a header is ever logged by something in between."""

ERROR_BODY_LIMIT = 64 * 1024
"""An error response body is read up to this size for its ``Code``; COS's are a few hundred
bytes, and a larger one is not worth reading (the connection is dropped instead)."""

PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})
"""Environment variables (any case) that make requests use a proxy; with one set, the SDK reads."""

LEGACY_REGIONS = frozenset({"cn-north", "cn-south", "cn-east", "cn-south-2", "cn-southwest"})
"""Old region names the SDK maps to domains without ``cos.`` (``cos_comm.format_region``)."""


def usable_for(settings: CosSettings, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this module can make the GET the SDK would make for ``settings``."""
    env = os.environ if environ is None else environ
    proxied = any(k.lower() in PROXY_VARIABLES and v for k, v in env.items())
    return not (proxied or settings.sdk_reads or settings.region in LEGACY_REGIONS)


def _q(value: str) -> str:
    return quote(value.encode("utf-8"), safe="-_.~")


def authorization(
    secret_id: str,
    secret_key: str,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    now: int,
    lifetime: int = SIGNATURE_LIFETIME,
) -> str:
    """The ``Authorization`` value for a request signing every header in ``headers`` and no URL
    parameter; ``path`` is the key with a leading ``/``, not URL-encoded (as the SDK signs it)."""
    key_time = f"{now - 60};{now + lifetime}"
    signed = sorted((_q(k).lower(), _q(v)) for k, v in headers.items())
    http_string = "{}\n{}\n\n{}\n".format(
        method.lower(), path, "&".join(f"{k}={v}" for k, v in signed)
    )
    digest = hashlib.sha1(http_string.encode("utf-8")).hexdigest()
    string_to_sign = f"sha1\n{key_time}\n{digest}\n"
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    signature = hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={key_time}&q-key-time={key_time}"
        f"&q-header-list={';'.join(k for k, _ in signed)}&q-url-param-list="
        f"&q-signature={signature}"
    )


def url_path(key: str) -> str:
    """The request path ``CosConfig.uri`` builds for ``key``."""
    return "/" + quote(key.lstrip("/").encode("utf-8"), safe="/-_.~").replace("./", ".%2F")


def _ca_bundle() -> str:
    """The bundle requests verifies against, so both paths trust the same authorities."""
    chosen = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if chosen:
        return chosen
    import certifi

    return certifi.where()


_CODE = re.compile(rb"<Code>\s*([A-Za-z0-9_.-]{1,128})\s*</Code>")
_REQUEST_ID = re.compile(rb"<RequestId>\s*([A-Za-z0-9_.=+/-]{1,256})\s*</RequestId>")


def _error_code(body: bytes) -> tuple[str, str | None]:
    """``Code`` and ``RequestId`` of a COS XML error body; ``Unknown`` if there is none.

    Two patterns, not an XML parser: these two plain-text elements are all that is read from
    the body, and a pattern cannot be made to expand entities."""
    code = _CODE.search(body)
    rid = _REQUEST_ID.search(body)
    return (
        code.group(1).decode() if code else "Unknown",
        rid.group(1).decode() if rid else None,
    )


class SignedGet:
    """GET Object over one kept-alive connection per thread.

    A connection the server closed while it sat idle fails on its next request; that request
    is sent once more on a new connection (GET is idempotent). Every other failure is returned
    to the store's retry loop as a typed error.
    """

    def __init__(self, settings: CosSettings) -> None:
        self.host = f"{settings.bucket}.cos.{settings.region}.myqcloud.com"
        self._https = settings.scheme == "https"
        self._connect_to = settings.ip or self.host
        self._port = settings.port
        self._timeout = settings.timeout
        self._ssl: ssl.SSLContext | None = None
        self._local = threading.local()

    def get(
        self, key: str, creds: TemporaryCredentials, *, max_size: int | None = None
    ) -> StoredObject:
        path = "/" + key.lstrip("/")
        signed = {"Host": self.host}
        if creds.session_token:
            signed["x-cos-security-token"] = creds.session_token
        headers = {
            **signed,
            "Authorization": authorization(
                creds.access_key_id,
                creds.secret_access_key,
                method="GET",
                path=path,
                headers=signed,
                now=int(time.time()),
            ),
            "User-Agent": "portable-creds",
        }
        try:
            resp = self._send(url_path(key), headers)
            if resp.status != 200:
                raise self._refused(resp, key)
            length = resp.getheader("Content-Length")
            if max_size is not None and length is not None and int(length) > max_size:
                self._drop()  # refused on the announced length: the body is never read
                check_object_size(key, int(length), max_size)
            data = resp.read() if max_size is None else resp.read(max_size + 1)
            if max_size is not None and len(data) > max_size:
                self._drop()  # more than announced (or unannounced): stop at the cap
                check_object_size(key, len(data), max_size)
            if length is not None and int(length) != len(data):
                self._drop()
                raise cos_network_error("GET", key)
            if resp.will_close:
                self._drop()
            return StoredObject(data=data, etag=resp.getheader("ETag") or "")
        except (OSError, http.client.HTTPException):
            # Refused connection, reset, timeout, TLS failure, a body cut short: what the SDK
            # reports as CosClientError, and mapped the same way (retried by the store).
            self._drop()
            raise cos_network_error("GET", key) from None

    def _refused(self, resp: http.client.HTTPResponse, key: str) -> PortableCredsError:
        body = resp.read(ERROR_BODY_LIMIT + 1)
        if len(body) > ERROR_BODY_LIMIT or resp.will_close:
            self._drop()
        code, rid = _error_code(body[:ERROR_BODY_LIMIT])
        rid = rid or resp.getheader("x-cos-request-id")
        return cos_status_error(resp.status, code, rid, "GET", key)

    # connections ---------------------------------------------------------------------------
    def _send(self, path: str, headers: Mapping[str, str]) -> http.client.HTTPResponse:
        for _ in range(2):
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            reused = conn is not None
            if conn is None:
                conn = self._connect()
                self._local.conn = conn
            try:
                conn.request("GET", path, headers=headers)
                return conn.getresponse()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                self._drop()
                if not reused:
                    raise
        raise AssertionError("unreachable: a fresh connection's failure is raised above")

    def _connect(self) -> http.client.HTTPConnection:
        if not self._https:
            return http.client.HTTPConnection(self._connect_to, self._port, timeout=self._timeout)
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=_ca_bundle())
        # As requests does, the certificate is checked against the address connected to
        # (ip= when given, else the bucket's COS host).
        return http.client.HTTPSConnection(
            self._connect_to, self._port, timeout=self._timeout, context=self._ssl
        )

    def close(self) -> None:
        """Close the calling thread's connection, if it has one."""
        self._drop()

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
