"""The GET Object request ``signed_get`` makes instead of cos-python-sdk-v5 (issue 13).

The SDK is the contract: the same GET made by ``CosS3Client.get_object`` and by ``SignedGet``
is recorded by a local HTTP server and compared (path, ``Host``, token, signed header and
parameter lists), and the SDK's ``Authorization`` is reproduced byte for byte by
``authorization()``. The signature-verifying double checks the rest end to end (every store
test reads through this path); here also: error mapping, a kept-alive connection the server
closed, a body cut short, the size cap, TLS verification, and the SDK fallback under a proxy.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from portable_creds_tencent.settings import CosSettings, parse_settings
from portable_creds_tencent.signed_get import SignedGet, authorization, usable_for
from qcloud_cos import CosConfig, CosS3Client

from portable_creds.driver import StoreTarget, TemporaryCredentials
from portable_creds.errors import (
    AccessDenied,
    CredentialsError,
    NotFound,
    PayloadTooLarge,
    PortableCredsError,
    RemoteUnavailable,
    TransientError,
)

from .conftest import WALLET_A, WALLET_B, Env, key

BUCKET = "creds-1250000000"
REGION = "ap-guangzhou"
CREDS = TemporaryCredentials("AKIDtest", "secret/key+=", "session-token-value", None)

Reply = Callable[[BaseHTTPRequestHandler], None]


class Recorder:
    """A loopback HTTP/1.1 server that records each request and answers with ``reply``."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.client_ports: list[int] = []
        self.reply: Reply = ok(b"sealed-bytes")
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                recorder.requests.append((self.path, headers))
                recorder.client_ports.append(self.client_address[1])
                recorder.reply(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(body: bytes, *, close: bool = False, length: int | None = None) -> Reply:
    """200 with ``body``; ``close`` drops the connection afterwards without saying so."""

    def reply(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.send_header("ETag", '"etag-1"')
        h.end_headers()
        h.wfile.write(body)
        h.close_connection = close

    return reply


def refuse(status: int, body: bytes, *, request_id: str | None = None) -> Reply:
    def reply(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        if request_id:
            h.send_header("x-cos-request-id", request_id)
        h.end_headers()
        h.wfile.write(body)

    return reply


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.stop()


def settings_for(port: int, scheme: str = "http") -> CosSettings:
    url = f"cos://{BUCKET}?region={REGION}&scheme={scheme}&ip=127.0.0.1&port={port}"
    return parse_settings(StoreTarget(url=url, wallet=None))


def sdk_get(port: int, object_key: str) -> bytes:
    conf = CosConfig(
        Region=REGION,
        SecretId=CREDS.access_key_id,
        SecretKey=CREDS.secret_access_key,
        Token=CREDS.session_token,
        Scheme="http",
        IP="127.0.0.1",
        Port=port,
    )
    resp = CosS3Client(conf, retry=0).get_object(Bucket=BUCKET, Key=object_key)
    return bytes(resp["Body"].get_raw_stream().read())


def fields(auth: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in auth.split("&"))


# the SDK as the contract ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "object_key",
    [
        key(WALLET_A),
        "bots/0xab/credentials/a b+c%d.enc",
        "bots/0xab/credentials/ünï./code~x.enc",
    ],
)
def test_same_request_as_the_sdk(recorder: Recorder, object_key: str) -> None:
    assert sdk_get(recorder.port, object_key) == b"sealed-bytes"
    got = SignedGet(settings_for(recorder.port)).get(object_key, CREDS)
    assert got.data == b"sealed-bytes"
    assert got.etag == '"etag-1"'
    (sdk_path, sdk_headers), (our_path, our_headers) = recorder.requests
    assert our_path == sdk_path
    for name in ("host", "x-cos-security-token"):
        assert our_headers[name] == sdk_headers[name]
    sdk_auth, our_auth = fields(sdk_headers["authorization"]), fields(our_headers["authorization"])
    for name in ("q-sign-algorithm", "q-ak", "q-header-list", "q-url-param-list"):
        assert our_auth[name] == sdk_auth[name]
    assert our_auth["q-header-list"] == "host;x-cos-security-token"
    # The SDK's own signature, reproduced from its sign time and lifetime (10,000 s).
    start, end = (int(t) for t in sdk_auth["q-sign-time"].split(";"))
    assert sdk_headers["authorization"] == authorization(
        CREDS.access_key_id,
        CREDS.secret_access_key,
        method="GET",
        path="/" + object_key,
        headers={"host": sdk_headers["host"], "x-cos-security-token": CREDS.session_token or ""},
        now=start + 60,
        lifetime=end - start - 60,
    )
    # Ours is valid for 10 minutes, not the SDK's ~2.8 hours.
    ours_start, ours_end = (int(t) for t in our_auth["q-sign-time"].split(";"))
    assert ours_end - ours_start == 660


def test_permanent_keys_sign_only_host(recorder: Recorder) -> None:
    static = TemporaryCredentials("AKIDstatic", "static-secret", None, None)
    SignedGet(settings_for(recorder.port)).get(key(WALLET_A), static)
    ((_, headers),) = recorder.requests
    assert "x-cos-security-token" not in headers
    assert fields(headers["authorization"])["q-header-list"] == "host"


def test_host_is_the_sdks_for_every_region() -> None:
    for region in ("ap-guangzhou", "ap-beijing-1", "na-siliconvalley", "eu-frankfurt"):
        url = f"cos://{BUCKET}?region={region}"
        ours = SignedGet(parse_settings(StoreTarget(url=url, wallet=None))).host
        sdk = CosConfig(Region=region, SecretId="x", SecretKey="y").get_host(Bucket=BUCKET)
        assert ours == sdk


def test_legacy_region_or_proxy_reads_through_the_sdk() -> None:
    settings = settings_for(1)
    assert usable_for(settings, {})
    for var in ("HTTPS_PROXY", "http_proxy", "ALL_PROXY"):
        assert not usable_for(settings, {var: "http://proxy.internal:3128"})
    assert usable_for(settings, {"HTTPS_PROXY": ""})
    legacy = parse_settings(StoreTarget(url=f"cos://{BUCKET}?region=cn-south", wallet=None))
    assert not usable_for(legacy, {})
    asked = parse_settings(
        StoreTarget(url=f"cos://{BUCKET}?region={REGION}&sdk_reads=true", wallet=None)
    )
    assert not usable_for(asked, {})


# failures ------------------------------------------------------------------------------------
def test_refusals_map_like_the_sdk_path(recorder: Recorder) -> None:
    getter = SignedGet(settings_for(recorder.port))
    body = (
        b"<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n\t<Code>NoSuchKey</Code>\n"
        b"\t<Message>The specified key does not exist.</Message>\n"
        b"\t<RequestId>NjQ1ZmI2NDVf</RequestId>\n</Error>"
    )
    recorder.reply = refuse(404, body)
    with pytest.raises(NotFound) as missing:
        getter.get("bots/x/credentials/a.enc", CREDS)
    assert missing.value.request_id == "NjQ1ZmI2NDVf"
    recorder.reply = refuse(403, body.replace(b"NoSuchKey", b"SignatureDoesNotMatch"))
    with pytest.raises(CredentialsError):
        getter.get("bots/x/credentials/a.enc", CREDS)
    # No XML (a proxy's or load balancer's page): judged by status; the header's request id.
    recorder.reply = refuse(403, b"<html>denied</html>", request_id="rid-h")
    with pytest.raises(AccessDenied) as denied:
        getter.get("bots/x/credentials/a.enc", CREDS)
    assert denied.value.request_id == "rid-h"
    recorder.reply = refuse(503, b"<html>busy</html>")
    with pytest.raises(TransientError):
        getter.get("bots/x/credentials/a.enc", CREDS)
    # All of them on one kept-alive connection (error bodies are read to the end).
    assert len(recorder.client_ports) == 4
    assert len(set(recorder.client_ports)) == 1


def test_a_connection_closed_while_idle_is_replaced_without_an_error(recorder: Recorder) -> None:
    getter = SignedGet(settings_for(recorder.port))
    recorder.reply = ok(b"first", close=True)  # the server drops it after answering
    assert getter.get("bots/x/credentials/a.enc", CREDS).data == b"first"
    recorder.reply = ok(b"second")
    assert getter.get("bots/x/credentials/a.enc", CREDS).data == b"second"
    assert len(recorder.requests) == 2
    assert len(set(recorder.client_ports)) == 2


def test_a_body_cut_short_is_a_network_error_and_retried(env: Env) -> None:
    store = env.open(WALLET_A)
    short = Recorder()
    try:
        short.reply = ok(b"0123456789", close=True, length=100)
        getter = SignedGet(settings_for(short.port))
        with pytest.raises(TransientError):
            getter.get("bots/x/credentials/a.enc", CREDS)
        # Through the store: retried within its budget, then reported as unavailable.
        store._reader = getter  # the store's reader, pointed at the misbehaving server
        with pytest.raises(RemoteUnavailable):
            store.get(key(WALLET_A))
        assert len(short.requests) == 1 + 1 + store.settings.retries
    finally:
        short.stop()


def test_size_cap_refuses_on_the_announced_length(recorder: Recorder) -> None:
    getter = SignedGet(settings_for(recorder.port))
    recorder.reply = ok(b"x" * 64)
    with pytest.raises(PayloadTooLarge):
        getter.get("bots/x/credentials/a.enc", CREDS, max_size=10)
    assert getter.get("bots/x/credentials/a.enc", CREDS, max_size=64).data == b"x" * 64


def test_redirects_are_not_followed(recorder: Recorder) -> None:
    def redirect(h: BaseHTTPRequestHandler) -> None:
        h.send_response(307)
        h.send_header("Location", "http://elsewhere.invalid/steal")
        h.send_header("Content-Length", "0")
        h.end_headers()

    recorder.reply = redirect
    with pytest.raises(PortableCredsError) as refused:
        SignedGet(settings_for(recorder.port)).get("bots/x/credentials/a.enc", CREDS)
    assert "307" in str(refused.value)
    assert len(recorder.requests) == 1


# TLS -----------------------------------------------------------------------------------------
def _tls_server(tmp_path: Path) -> tuple[Recorder, Path]:
    key_ = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key_.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key_, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key_.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Recorder(context), cert_file


def test_tls_is_verified_against_the_bundle_requests_would_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = _tls_server(tmp_path)
    try:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        with pytest.raises(TransientError):  # certifi does not know this certificate
            SignedGet(settings_for(server.port, "https")).get("bots/x/credentials/a.enc", CREDS)
        assert server.requests == []
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        got = SignedGet(settings_for(server.port, "https")).get("bots/x/credentials/a.enc", CREDS)
        assert got.data == b"sealed-bytes"
    finally:
        server.stop()


# through the store, against the double --------------------------------------------------------
@pytest.mark.parametrize("why", ["proxy in the environment", "sdk_reads=true"])
def test_store_reads_through_the_sdk_when_asked_to(
    env: Env, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    env.open(WALLET_A).put(key(WALLET_A), b"sealed")
    if why == "proxy in the environment":
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # requests goes direct to the double
        store = env.open(WALLET_A)
    else:
        store = env.open(WALLET_A, url_extra="&sdk_reads=true")
    assert store._reader is None
    assert store.get(key(WALLET_A)).data == b"sealed"
    with pytest.raises(AccessDenied):
        store.get(key(WALLET_B))


def test_signed_get_on_the_double_is_isolated(env: Env) -> None:
    env.open(WALLET_A).put(key(WALLET_A), b"sealed-a")
    store_b = env.open(WALLET_B)
    assert store_b._reader is not None
    with pytest.raises(AccessDenied):
        store_b.get(key(WALLET_A))
    with pytest.raises(NotFound):
        env.open(WALLET_A).get(key(WALLET_A, "missing"))
    assert env.open(WALLET_A).get(key(WALLET_A)).data == b"sealed-a"
