"""isolation-crypto: a blob moved to another tenant, service or path never opens.

The admin view plays the compromised storage layer: it copies sealed blobs around. Every read
of a moved blob must fail with ``IntegrityError`` and never return the original plaintext. The
``same-kek`` cases use one KEK for everybody, so only the context binding (wallet, service and
storage key in the AAD) is left to stop the read: that is the property under test.
"""

from __future__ import annotations

import os

from portable_creds import envelope, names
from portable_creds.errors import IntegrityError
from portable_creds.secret_key import SecretKeySource

from ..groups import case
from ..run import ConformanceRun
from ._support import FixedKeySource, expect_error, expect_integrity_error, key_of, secret


def _copy(pc: ConformanceRun, src: str, dst: str) -> bytes:
    blob = pc.admin.get(src).data
    pc.admin.put(dst, blob)
    assert pc.admin.get(dst).data == blob, "the admin view did not store the bytes verbatim"
    return blob


@case("isolation-crypto", "cross-tenant-copy")
def test_cross_tenant_copy(pc: ConformanceRun) -> None:
    value = secret()
    pc.a.put("svc", value)
    _copy(pc, key_of(pc.a, "svc"), key_of(pc.b, "svc"))
    expect_integrity_error(pc.b, "svc", value, "A's blob copied to B's path")


@case("isolation-crypto", "cross-tenant-copy-same-kek")
def test_cross_tenant_copy_same_kek(pc: ConformanceRun) -> None:
    keys = FixedKeySource()
    a, b = pc.harness.rebuild(pc.a, keys=keys), pc.harness.rebuild(pc.b, keys=keys)
    value = secret()
    a.put("svc", value)
    assert a.get("svc").reveal() == value, "control: the fixed-KEK store must open its own blob"
    _copy(pc, key_of(a, "svc"), key_of(b, "svc"))
    expect_integrity_error(b, "svc", value, "A's blob at B's path under a shared KEK")


@case("isolation-crypto", "cross-service-copy")
def test_cross_service_copy(pc: ConformanceRun) -> None:
    keys = FixedKeySource()
    a = pc.harness.rebuild(pc.a, keys=keys)
    value, decoy = secret(), secret()
    a.put("github", value)
    a.put("aws", decoy)
    _copy(pc, key_of(a, "github"), key_of(a, "aws"))
    expect_integrity_error(a, "aws", value, "a blob copied to another service of the tenant")
    expect_integrity_error(pc.a, "aws", value, "the same, through the harness's key source")


@case("isolation-crypto", "cross-prefix-copy")
def test_cross_prefix_copy(pc: ConformanceRun) -> None:
    """Same wallet and service, another layout prefix: the storage key is bound too."""
    keys = FixedKeySource()
    a = pc.harness.rebuild(pc.a, keys=keys)
    value = secret()
    a.put("svc", value)
    elsewhere = names.object_key(pc.wallet_a, "svc", f"{pc.run_root}/elsewhere")
    blob = _copy(pc, key_of(a, "svc"), elsewhere)
    exc = expect_error(
        IntegrityError,
        lambda: envelope.open_blob(
            blob,
            context=envelope.Context(pc.wallet_a, "svc", elsewhere),
            resolve_kek=lambda kek_id: keys.kek_for_id(pc.wallet_a, "svc", kek_id),
        ),
        "a blob opened as if it lived under another prefix",
    )
    assert value.hex() not in str(exc)


@case("isolation-crypto", "other-kek")
def test_other_kek(pc: ConformanceRun) -> None:
    """A blob sealed under another root secret, at exactly the right path, does not open."""
    value = secret()
    stranger = pc.harness.rebuild(pc.a, keys=SecretKeySource(os.urandom(32)))
    stranger.put("svc", value)
    expect_integrity_error(pc.a, "svc", value, "a blob sealed under another KEK")
    assert stranger.get("svc").reveal() == value, "control: the other key source opens it"


@case("isolation-crypto", "swap-and-restore")
def test_swap_and_restore(pc: ConformanceRun) -> None:
    """B's blob replaced by A's is detected; putting B's bytes back makes it readable again."""
    a_value, b_value = secret(), secret()
    pc.a.put("svc", a_value)
    pc.b.put("svc", b_value)
    original = pc.admin.get(key_of(pc.b, "svc")).data
    _copy(pc, key_of(pc.a, "svc"), key_of(pc.b, "svc"))
    expect_integrity_error(pc.b, "svc", a_value, "B's credential replaced by A's blob")
    pc.admin.put(key_of(pc.b, "svc"), original)
    assert pc.b.get("svc").reveal() == b_value
    assert pc.a.get("svc").reveal() == a_value
