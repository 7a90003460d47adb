"""Property tests: the envelope parser, name validation, the local key->path mapping, URL parsing.

Each property is checked against an independent specification written here (a regex, a
hand-built header), never against outputs the code under test produced.
"""

from __future__ import annotations

import os
import posixpath
import re
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from portable_creds import envelope, names
from portable_creds.errors import AccessDenied, IntegrityError, InvalidName, PayloadTooLarge
from portable_creds.keys import Kek

PROFILE = settings(
    max_examples=int(
        os.environ.get("PROPERTY_EXAMPLES", "3000" if os.environ.get("STRESS") == "1" else "300")
    ),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

WALLET = "0x" + "ab" * 20
KEK = Kek("prop.v1", bytes(range(32)))
OTHER_KEK = Kek("prop.v1", bytes(range(1, 33)))

# -- the specification, written independently of portable_creds.names -----------------------

SPEC_SERVICE = re.compile(r"(?!\.)(?!.*\.\.)[A-Za-z0-9._\-]{1,64}\Z", re.ASCII)
SPEC_WALLET = re.compile(r"0x[0-9a-fA-F]{40}\Z", re.ASCII)

# Characters that matter for paths and lookalikes, mixed with the allowed alphabet.
NASTY = "/\\\x00\n\r\t .~:%?#*\u00e9\u0130\u0131\uff21\uff10\u202e\u200b"
ALLOWED = "ABCxyz019._-"
name_text = st.text(alphabet=st.sampled_from(list(ALLOWED + NASTY)), min_size=0, max_size=70)
valid_service = st.from_regex(r"\A[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,63}\Z").filter(
    lambda s: ".." not in s
)
valid_wallet = st.from_regex(r"\A0x[0-9a-fA-F]{40}\Z")


def _resolve(kek: Kek) -> object:
    def resolve(kek_id: str) -> Kek:
        if kek_id != kek.kek_id:
            raise IntegrityError()
        return kek

    return resolve


def _ctx(service: str = "svc") -> envelope.Context:
    return envelope.Context(WALLET, service, names.object_key(WALLET, service))


def _open(blob: bytes, ctx: envelope.Context | None = None, kek: Kek = KEK) -> bytes:
    return envelope.open_blob(
        blob,
        context=ctx or _ctx(),
        resolve_kek=_resolve(kek),  # type: ignore[arg-type]
        max_payload=envelope.ABSOLUTE_MAX_PAYLOAD,
    )


def _sealed(plaintext: bytes, ctx: envelope.Context | None = None) -> bytes:
    return envelope.seal(plaintext, kek=KEK, context=ctx or _ctx())


# -- envelope parser --------------------------------------------------------------------------


@PROFILE
@given(st.binary(max_size=600))
@example(b"")
@example(b"PCE\x01\x00\x01")
@example(b"PCE\x01\x00\x01\x00" + b"\x00" * 200)
def test_arbitrary_bytes_only_raise_the_documented_errors(data: bytes) -> None:
    """The parser's whole failure surface is IntegrityError / PayloadTooLarge."""
    try:
        header = envelope.parse_header(data)
    except (IntegrityError, PayloadTooLarge):
        header = None
    if header is not None:
        # If it parses, the lengths it claims are exactly the bytes present.
        assert header.header_len + header.payload_len + envelope.TAG_LEN == len(data)
    with pytest.raises((IntegrityError, PayloadTooLarge)):
        _open(data)


@st.composite
def structured_blobs(draw: st.DrawFn) -> bytes:
    """Blobs that get past the magic check, to reach the deeper parser branches."""
    version = draw(st.sampled_from([1, 0, 2, 255]))
    suite = draw(st.sampled_from([1, 0, 2, 0xFFFF]))
    n = draw(st.integers(0, 80))
    kek_id = draw(st.binary(min_size=n, max_size=n))
    fixed = draw(st.binary(min_size=104, max_size=104))
    declared = draw(st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)))
    body_len = draw(st.one_of(st.just(declared + 16), st.integers(0, 100)))
    body = draw(st.binary(min_size=min(body_len, 200), max_size=min(body_len, 200)))
    return (
        b"PCE"
        + bytes([version])
        + suite.to_bytes(2, "big")
        + bytes([n])
        + kek_id
        + fixed
        + struct.pack(">I", declared)
        + body
    )


@PROFILE
@given(structured_blobs())
def test_header_shaped_garbage_never_opens(blob: bytes) -> None:
    try:
        header = envelope.parse_header(blob)
    except (IntegrityError, PayloadTooLarge):
        pass
    else:
        # Accepted headers satisfy the documented constraints.
        assert blob[:6] == b"PCE\x01\x00\x01"
        assert 1 <= len(header.kek_id) <= envelope.KEK_ID_MAX
        assert all(0x21 <= ord(c) <= 0x7E for c in header.kek_id)
    with pytest.raises((IntegrityError, PayloadTooLarge)):
        _open(blob)


@PROFILE
@given(st.binary(max_size=2048), valid_service)
def test_round_trip_and_context_binding(plaintext: bytes, service: str) -> None:
    ctx = _ctx(service)
    blob = _sealed(plaintext, ctx)
    assert _open(blob, ctx) == plaintext
    assert len(plaintext) < 16 or plaintext not in blob  # short strings occur by chance
    # The same bytes under any other path, service or tenant do not open.
    moved = envelope.Context(WALLET, service, ctx.storage_key + ".bak")
    sibling = service[:-1] + ("y" if service.endswith("x") else "x")  # valid, different
    other_service = envelope.Context(WALLET, sibling, names.object_key(WALLET, sibling))
    other_wallet = envelope.Context(
        "0x" + "cd" * 20, service, names.object_key("0x" + "cd" * 20, service)
    )
    for wrong in (moved, other_service, other_wallet):
        with pytest.raises(IntegrityError):
            _open(blob, wrong)
    with pytest.raises(IntegrityError):
        _open(blob, ctx, OTHER_KEK)


@PROFILE
@given(st.binary(min_size=0, max_size=300), st.data())
def test_any_mutation_of_a_sealed_blob_is_an_integrity_error(
    plaintext: bytes, data: st.DataObject
) -> None:
    blob = _sealed(plaintext)
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "splice", "replace"]))
    if kind == "flip":
        pos = data.draw(st.integers(0, len(blob) - 1))
        bit = data.draw(st.integers(0, 7))
        mutated = blob[:pos] + bytes([blob[pos] ^ (1 << bit)]) + blob[pos + 1 :]
    elif kind == "truncate":
        mutated = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "extend":
        mutated = blob + data.draw(st.binary(min_size=1, max_size=32))
    elif kind == "splice":
        other = _sealed(plaintext)  # same plaintext and context, fresh DEK and nonces
        cut = data.draw(st.integers(1, len(blob) - 1))
        mutated = blob[:cut] + other[cut:]
        assume(mutated != other)  # a splice at a shared prefix is just the other valid blob
    else:
        start = data.draw(st.integers(0, len(blob) - 1))
        length = data.draw(st.integers(1, min(16, len(blob) - start)))
        patch = data.draw(st.binary(min_size=length, max_size=length))
        mutated = blob[:start] + patch + blob[start + length :]
    assume(mutated != blob)
    with pytest.raises(IntegrityError):
        _open(mutated)


@PROFILE
@given(st.integers(0, 4096), st.integers(0, 4096))
def test_payload_limit_is_enforced_on_both_sides(size: int, limit: int) -> None:
    ctx = _ctx()
    if size > limit:
        with pytest.raises(PayloadTooLarge):
            envelope.seal(b"x" * size, kek=KEK, context=ctx, max_payload=limit)
        blob = envelope.seal(b"x" * size, kek=KEK, context=ctx)
        with pytest.raises(PayloadTooLarge):
            envelope.open_blob(
                blob,
                context=ctx,
                resolve_kek=_resolve(KEK),  # type: ignore[arg-type]
                max_payload=limit,
            )
    else:
        blob = envelope.seal(b"x" * size, kek=KEK, context=ctx, max_payload=limit)
        opened = envelope.open_blob(
            blob,
            context=ctx,
            resolve_kek=_resolve(KEK),  # type: ignore[arg-type]
            max_payload=limit,
        )
        assert opened == b"x" * size


# -- name validation, model-based ---------------------------------------------------------------


@PROFILE
@given(st.one_of(name_text, valid_service))
@example(".hidden")
@example("a..b")
@example("..")
@example("a" * 64)
@example("a" * 65)
@example("ok\n")
@example("\uff21")  # fullwidth A
def test_service_validation_matches_the_spec(candidate: str) -> None:
    expected = SPEC_SERVICE.match(candidate) is not None
    try:
        got = names.validate_service(candidate)
    except InvalidName as exc:
        assert not expected, f"{candidate!r} should be accepted"
        assert "1-64 characters" in exc.message  # says what to do
        return
    assert expected, f"{candidate!r} should be rejected"
    assert got == candidate  # case preserved, not normalised


@PROFILE
@given(st.one_of(valid_wallet, st.text(alphabet="0xXabcdefABCDEF123456789 \n", max_size=44)))
@example("0x" + "A" * 40 + "\n")
@example("0X" + "a" * 40)
def test_wallet_validation_matches_the_spec(candidate: str) -> None:
    expected = SPEC_WALLET.match(candidate) is not None
    try:
        got = names.validate_wallet(candidate)
    except InvalidName:
        assert not expected
        return
    assert expected
    assert got == candidate.lower()


@PROFILE
@given(valid_wallet, st.one_of(name_text, valid_service))
def test_accepted_names_map_under_the_tenant_prefix(wallet: str, service: str) -> None:
    try:
        key = names.object_key(wallet, service)
    except InvalidName:
        assert SPEC_SERVICE.match(service) is None
        return
    tenant = f"bots/{wallet.lower()}/"
    assert key == f"{tenant}credentials/{service}.enc"
    assert key.startswith(tenant)
    assert posixpath.normpath(key) == key  # nothing to collapse: no '.', '..', '//'
    assert all(seg not in ("", ".", "..") for seg in key.split("/"))
    assert "/" not in key[len(tenant + "credentials/") :]
    assert names.service_from_key(key, wallet) == service


@PROFILE
@given(valid_wallet, valid_service, valid_wallet, valid_service)
def test_object_keys_are_injective(w1: str, s1: str, w2: str, s2: str) -> None:
    same = (w1.lower(), s1) == (w2.lower(), s2)
    assert (names.object_key(w1, s1) == names.object_key(w2, s2)) == same


# -- the local driver's key -> file mapping stays inside its root -----------------------------


@PROFILE
@given(
    st.lists(
        st.one_of(name_text, st.sampled_from(["..", ".", "", WALLET, "0x" + "cd" * 20])),
        min_size=1,
        max_size=6,
    )
)
@example(["bots", WALLET, "credentials", "x.enc"])
@example(["bots", WALLET, "..", "..", "escape"])
@example(["bots", WALLET, "0x" + "cd" * 20, "x"])
@example([WALLET])
def test_local_store_never_writes_outside_its_tenant_area(
    tmp_path_factory: pytest.TempPathFactory, segments: list[str]
) -> None:
    from portable_creds.local import LocalObjectStore

    base = tmp_path_factory.mktemp("local")
    root = base / "root"
    store = LocalObjectStore(root, wallet=WALLET)
    key = "/".join(segments)
    try:
        store.put(key, b"sealed")
    except (InvalidName, AccessDenied):
        written: list[Path] = []
    else:
        written = [p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".pc~")]
        assert len(written) == 1
        rel = written[0].relative_to(root).as_posix()  # raises if outside the root
        assert rel == key
        assert WALLET in rel.split("/")[:-1]
        assert "0x" + "cd" * 20 not in rel.split("/")
        assert store.get(key).data == b"sealed"
    assert all(p.resolve().is_relative_to(root.resolve()) for p in base.rglob("*"))
    del written


# -- the URL opener -------------------------------------------------------------------------

url_text = st.text(
    alphabet=st.sampled_from(list("abcs3o:/[]?&=%@#.-_~ 0123456789AZ\\\x00\u00e9")), max_size=40
)
schemes = st.sampled_from(["local", "LOCAL", "s3", "S3", "aws", "cos", "tencent", "nope", ""])


@PROFILE
@given(st.one_of(url_text, st.builds(lambda s, r: f"{s}:{r}", schemes, url_text)))
@example("s3://[bucket")
@example("http://[::1")
def test_scheme_parsing_fails_only_with_configuration_error(url: str) -> None:
    from portable_creds.errors import ConfigurationError
    from portable_creds.registry import scheme_of

    try:
        scheme = scheme_of(url)
    except ConfigurationError as exc:
        assert "use e.g." in exc.message or "URL" in exc.message
        return
    assert scheme == scheme.lower() and scheme and ":" not in scheme
    assert url.lower().startswith(scheme) or scheme == "http"


@PROFILE
@given(
    st.builds(lambda s, r: f"{s}:{r}", st.sampled_from(["nope", "ftp", "gs", "azure"]), url_text)
)
def test_unknown_backends_are_a_configuration_error_naming_the_scheme(url: str) -> None:
    from portable_creds.errors import ConfigurationError
    from portable_creds.registry import open_object_store

    try:
        open_object_store(url, wallet=WALLET)
    except ConfigurationError as exc:
        assert "no storage driver" in exc.message or "URL" in exc.message
    else:
        raise AssertionError(f"{url!r} opened a store")


@PROFILE
@given(
    st.text(alphabet=st.sampled_from(list("ab/.~%20 \u00e9")), max_size=30),
    st.sampled_from(["", "localhost", "example.com"]),
)
@example("", "")
def test_local_urls_map_to_exactly_the_absolute_path_given(path: str, host: str) -> None:
    from urllib.parse import quote

    from portable_creds.errors import ConfigurationError
    from portable_creds.local import root_from_url

    url = f"local://{host}/{quote(path)}"
    try:
        root = root_from_url(url, home="/nonexistent-home")
    except ConfigurationError as exc:
        assert host == "example.com" and "local:///abs/path" in exc.message
        return
    assert host in ("", "localhost")
    assert root == Path("/" + path)
    for bare in ("local:", "local://"):
        assert root_from_url(bare, home="/nonexistent-home") == Path("/nonexistent-home/objects")


SECRET_PARAMS = ["access_key", "secret_key", "session_token", "token"]
S3_PARAMS = ["region", "endpoint", "role_arn", "max_attempts", "read_timeout", "addressing", "x"]


@PROFILE
@given(
    st.dictionaries(
        st.sampled_from(S3_PARAMS + SECRET_PARAMS),
        st.text(alphabet="abcXYZ019:/._-", min_size=1, max_size=30),
        max_size=5,
    ),
    st.sampled_from(["creds", "Bad_Bucket", "ab", "my.bucket-1"]),
)
def test_s3_url_parsing_is_total_and_never_echoes_secrets(
    params: dict[str, str], bucket: str
) -> None:
    pytest.importorskip("portable_creds_aws")
    from portable_creds_aws.settings import parse_settings

    from portable_creds.driver import StoreTarget
    from portable_creds.errors import ConfigurationError

    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = f"s3://{bucket}?{query}"
    try:
        settings = parse_settings(StoreTarget(url=url, wallet=WALLET))
    except ConfigurationError as exc:
        for name in SECRET_PARAMS:
            if name in params and len(params[name]) >= 6:
                assert params[name] not in str(exc), "an error message echoed a secret"
        return
    assert not set(params) & set(SECRET_PARAMS), "a secret in the URL was accepted"
    assert settings.bucket == bucket
    assert params.get("x") is None
    assert bucket == "creds" or bucket == "my.bucket-1"
