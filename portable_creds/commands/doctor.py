"""``doctor``: check the configuration and every endpoint it names; a fix for every failure.

Checks: config file and profile, backend URL and driver, wallet, root secret, the store itself
(open + list: reachability, credentials, STS exchange for federated drivers), the legacy backend
(reachability, token, no-encryption notice), the signer, tokens that are JWTs (expiry), clock
skew against every HTTP endpoint that sent a ``Date`` header, outbox backlog, audit sink.
Exit status 0 only if nothing failed (warnings do not fail).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from typing import Any

from . import _common

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
MAX_SKEW = 300.0
"""Seconds. Beyond this, signed requests (SigV4 allows 15 min) and token lifetimes go wrong."""
EXPIRY_WARN = 300.0


class Checklist:
    def __init__(self) -> None:
        self.checks: list[dict[str, str]] = []
        self.server_times: list[tuple[str, float, float]] = []
        self.scoped_credentials: str | None = None

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.checks.append({"name": name, "status": status, "detail": detail, "fix": fix})

    @property
    def failed(self) -> bool:
        return any(c["status"] == FAIL for c in self.checks)


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "doctor",
        help="check configuration, endpoints, tokens, clock and outbox; fixes for failures",
        description=(
            "Run every check and print a checklist with a fix for each failure.\n"
            "Exit status is non-zero if any check failed (warnings do not fail)."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds doctor\n"
            "  portable-creds --profile work doctor --json \\\n"
            "      | jq '.checks[] | select(.status==\"fail\")'"
        ),
    )
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="per-endpoint timeout")
    p.set_defaults(func=cmd_doctor)


def _jwt_exp(token: str) -> float | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


def _check_token(cl: Checklist, name: str, token: str | None, source: str) -> None:
    if not token:
        return
    exp = _jwt_exp(token)
    if exp is None:
        cl.add(name, OK, f"set ({source}); opaque token, expiry not visible to the client")
        return
    left = exp - time.time()
    if left <= 0:
        cl.add(
            name,
            FAIL,
            f"JWT from {source} expired {int(-left)} s ago",
            f"obtain a fresh token and update {source}",
        )
    elif left < EXPIRY_WARN:
        cl.add(name, WARN, f"JWT from {source} expires in {int(left)} s", "refresh it soon")
    else:
        cl.add(name, OK, f"JWT from {source} valid for {int(left)} s more")


def _check_token_file(cl: Checklist, backend: str) -> None:
    """A federated backend's OIDC token file (``?token_file=``): present, and not expired."""
    from pathlib import Path
    from urllib.parse import parse_qsl, urlsplit

    path = dict(parse_qsl(urlsplit(backend).query)).get("token_file")
    if not path:
        return
    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        cl.add(
            "identity token",
            FAIL,
            f"cannot read token_file {path}: {exc.strerror}",
            "point token_file= at the file your platform refreshes",
        )
        return
    _check_token(cl, "identity token", token, f"token_file {path}")
    _check_oidc_claims(cl, token, f"token_file {path}")


def _check_oidc_claims(cl: Checklist, token: str, source: str) -> None:
    """Issuer requirements the cloud does not enforce (no ``exp``, multi-valued wallet tag)."""
    from ..oidc_claims import claim_problems, payload

    claims = payload(token)
    if claims is None:
        return
    problems = claim_problems(claims)
    if problems:
        cl.add(
            "identity token claims",
            FAIL,
            f"JWT from {source}: " + "; ".join(problems),
            "fix the issuer: one lower-case wallet per token, always with a short exp "
            "(docs/ceph.md, caveats)",
        )
    else:
        cl.add("identity token claims", OK, "exp set, one lower-case wallet tag")


def _config_checks(cl: Checklist, args: argparse.Namespace) -> dict[str, Any] | None:
    from .. import config
    from ..errors import ConfigurationError

    path = config.config_path(vars(args))
    try:
        profile, _ = config.profile_values(vars(args))
        resolved = config.resolve(vars(args))
    except ConfigurationError as exc:
        cl.add(
            "config file", FAIL, str(exc), f"fix {path} or select another profile with --profile"
        )
        return None
    where = f"{path}" if path.exists() else f"{path} (not present, defaults apply)"
    cl.add("config file", OK, f"{where}; profile {profile}")
    _config_mode_check(cl, path)
    return resolved


def _config_mode_check(cl: Checklist, path: Any) -> None:
    """A config file holding a secret (``legacy_token``, ``signer_token``) must be 0600: the
    same rule the root secret follows. ``config set`` writes it so; an editor or a copy may
    not have."""
    import stat

    from .. import config

    try:
        st = path.stat()
        doc = config.load(path)
    except Exception:  # a missing or unreadable file was reported by the check above
        return
    secret_keys = {k.name for k in config.KEYS if k.secret}
    held = sorted(
        {key for table in doc.get("profiles", {}).values() for key in table if key in secret_keys}
    )
    mode = stat.S_IMODE(st.st_mode)
    if held and mode & 0o077:
        cl.add(
            "config file mode",
            FAIL,
            f"{path} holds {', '.join(held)} and is mode {mode:04o} (readable by others)",
            f"chmod 600 {path}; rotate the token(s) if others could have read them",
        )


def _legacy_probe(
    cl: Checklist, name: str, url: str, token: str | None, wallet: str | None, timeout: float
) -> None:
    from ..legacy import NO_ENCRYPTION_NOTICE, LegacyClient

    cl.add("legacy encryption", WARN, NO_ENCRYPTION_NOTICE, "")
    if not token:
        cl.add(
            name,
            FAIL,
            f"{url}: no bearer token configured",
            "set PORTABLE_CREDS_LEGACY_TOKEN or 'config set legacy_token TOKEN'",
        )
        return
    if not wallet:
        cl.add(name, SKIP, f"{url}: needs a wallet to probe", "pass --wallet")
        return
    from ..errors import PortableCredsError

    try:
        client = LegacyClient(url, token=token, timeout=timeout, retries=0)
    except PortableCredsError as exc:
        cl.add(name, FAIL, str(exc), "use an https:// URL (plain http only on loopback)")
        return
    probe = client.probe(wallet)
    if probe.server_time is not None:
        cl.server_times.append((url, probe.server_time, probe.local_time))
    if probe.error is None:
        cl.add(name, OK, f"{url} reachable, token accepted for {wallet}")
    elif probe.status == 0:
        cl.add(name, FAIL, str(probe.error), f"start the legacy backend or fix its URL ({url})")
    elif probe.status in (401, 410):
        cl.add(
            name,
            FAIL,
            f"{url} rejected the token (HTTP {probe.status})",
            "log in again and set a fresh PORTABLE_CREDS_LEGACY_TOKEN",
        )
    elif probe.status == 403:
        cl.add(
            name,
            FAIL,
            f"{url}: the token may not act for {wallet} (HTTP 403)",
            "use a session token issued for this wallet",
        )
    else:
        cl.add(name, FAIL, f"{url} answered HTTP {probe.status}", "check the server's logs")


def _signer_probe(
    cl: Checklist, url: str, token: str | None, omni: str | None, wallet: str | None, timeout: float
) -> None:
    import urllib.error
    import urllib.request

    from ..errors import PortableCredsError
    from ..httpclient import build_opener, check_service_url
    from ..upstream import actor_omni_hex

    if not (omni or wallet):
        cl.add("signer", SKIP, f"{url}: needs a wallet or omni account to probe", "pass --wallet")
        return
    try:
        check_service_url(url, what="signer URL", hint=" (AGENTKEYS_SIGNER_URL)")
    except PortableCredsError as exc:
        cl.add("signer", FAIL, str(exc), "set AGENTKEYS_SIGNER_URL to https://... (or loopback)")
        return
    body = json.dumps({"omni_account": omni or actor_omni_hex(str(wallet))}).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(  # noqa: S310 - http(s) URL from the settings
        url.rstrip("/") + "/dev/derive-address", data=body, headers=headers, method="POST"
    )
    opener = build_opener(url)  # the bearer token never follows a cross-origin redirect
    now = time.time()
    try:
        with opener.open(req, timeout=timeout) as resp:
            date = resp.headers.get("Date")
            doc = json.loads(resp.read() or b"{}")
        status = 200
    except urllib.error.HTTPError as exc:
        status, date, doc = exc.code, exc.headers.get("Date"), {}
    except PortableCredsError as exc:  # a refused redirect
        cl.add("signer", FAIL, str(exc), "point AGENTKEYS_SIGNER_URL at the signer itself")
        return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        cl.add(
            "signer",
            FAIL,
            f"cannot reach the signer at {url} ({getattr(exc, 'reason', exc)})",
            "start the signer or fix AGENTKEYS_SIGNER_URL",
        )
        return
    if date:
        import contextlib
        import email.utils

        with contextlib.suppress(TypeError, ValueError):
            cl.server_times.append((url, email.utils.parsedate_to_datetime(date).timestamp(), now))
    if status == 200:
        cl.add("signer", OK, f"{url} reachable (address {doc.get('address', '?')})")
    elif status == 401:
        cl.add(
            "signer",
            FAIL,
            f"{url} wants a valid bearer token (HTTP 401)",
            "set AGENTKEYS_SIGNER_TOKEN",
        )
    elif status == 503:
        cl.add("signer", FAIL, f"{url} is disabled (HTTP 503)", "enable the signer")
    else:
        cl.add("signer", FAIL, f"{url} answered HTTP {status}", "check the signer URL and logs")


def _scoping_check(
    cl: Checklist, args: argparse.Namespace, backend_id: str, scoped_credentials: str
) -> None:
    """Who enforces ``--scope`` on this backend: the cloud, this client, or nobody."""
    cl.scoped_credentials = scoped_credentials
    if scoped_credentials == "cloud":
        detail = (
            "scoped credentials enforced by the cloud: --scope and 'creds export' get a session "
            f"limited to the named services (backend {backend_id})"
        )
    elif scoped_credentials == "client":
        detail = (
            f"--scope is enforced by this client only on {backend_id} (scoped_credentials="
            "client): the credentials in use reach every credential of the wallet; --scope "
            "needs --scope-enforcement client, 'creds export' is refused"
        )
    else:
        detail = (
            f"{backend_id} cannot scope credentials (scoped_credentials={scoped_credentials}): "
            "--scope needs --scope-enforcement client, 'creds export' is refused"
        )
    request = _common.scope_request(args)
    if request is not None and request.enforcement == "cloud" and scoped_credentials != "cloud":
        cl.add(
            "scoping",
            WARN,
            detail,
            "use s3:// with role_arn, or cos:// with mode=token-vendor, for a cloud-enforced "
            "scope; or pass --scope-enforcement client to accept a client-side limit",
        )
    elif request is not None and request.enforcement == "client":
        cl.add("scoping", WARN, detail + "; the scope is enforced by this client only")
    else:
        cl.add("scoping", OK, detail)


def _drift_check(cl: Checklist, args: argparse.Namespace, backend: str | None) -> None:
    """Deployed policies vs what the provisioner would render, via the driver's ``verify``.

    Needs administrative credentials, which tenants do not have, so it runs only when the
    operator configured ``admin_verify`` (the provisioner's arguments).
    """
    import contextlib
    import io
    import shlex

    from ..config import setting
    from ..errors import PortableCredsError
    from ..registry import load_driver_class, scheme_of

    admin_args = setting("admin_verify", vars(args))
    if not admin_args:
        cl.add(
            "policy drift",
            SKIP,
            "not configured (needs administrative credentials)",
            "set admin_verify to the provisioner's arguments ('portable-creds config set "
            'admin_verify "--bucket ... --issuer ..."\') with admin credentials in the '
            "environment, or run 'portable-creds admin <driver> verify ...' yourself",
        )
        return
    try:
        scheme = scheme_of(backend or "")
        admin_main = getattr(load_driver_class(scheme), "admin_main", None)
    except PortableCredsError as exc:
        cl.add("policy drift", FAIL, str(exc), "fix the backend first")
        return
    if admin_main is None:
        cl.add("policy drift", SKIP, f"the {scheme} driver has no provisioner", "")
        return
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = int(admin_main([*shlex.split(admin_args), "verify"]))
    except PortableCredsError as exc:
        code, err = exc.exit_code, io.StringIO(str(exc))
    except SystemExit as exc:  # the provisioner's argparse refused admin_verify (or --help)
        code = exc.code if isinstance(exc.code, int) else 2
        if code == 0:
            code = 2  # '--help' printed usage and verified nothing
            err = io.StringIO("admin_verify printed help instead of running verify")
    except ValueError as exc:  # shlex: unbalanced quotes
        code, err = 2, io.StringIO(f"admin_verify cannot be parsed: {exc}")
    warnings = [ln for ln in out.getvalue().splitlines() if ln.startswith("WARNING: ")]
    if code == 0 and warnings:
        # e.g. the Tencent provisioner near the account's CAM role quota
        cl.add(
            "policy drift",
            WARN,
            "deployed policies match; " + "; ".join(w[len("WARNING: ") :] for w in warnings[:2]),
            f"see 'portable-creds admin {scheme} {admin_args} verify'",
        )
        return
    if code == 0:
        cl.add("policy drift", OK, "deployed policies match what 'render' produces")
        return
    lines = [ln for ln in (err.getvalue() + out.getvalue()).splitlines() if ln.strip()]
    detail = "; ".join(lines[:3]) + (" ..." if len(lines) > 3 else "")
    cl.add(
        "policy drift",
        FAIL,
        detail or f"verify exited {code}",
        f"review with 'portable-creds admin {scheme} {admin_args} verify', then 'apply' to "
        "restore the rendered policies",
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    """Every check, then the report; whatever a check raises becomes a FAIL line, so doctor
    never exits without saying why."""
    _common.scope_request(args)  # a half-given --scope/--read-only is a usage error, up front
    cl = Checklist()
    try:
        _run_checks(cl, args)
    except Exception as exc:
        # Only the type (and an OSError's reason): an unexpected exception's text could carry
        # anything, and doctor's output is meant to be pasted into tickets.
        what = type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            what += f" ({exc.strerror})"
        cl.add(
            "doctor",
            FAIL,
            f"a check stopped with an unexpected {what}; the checks below it did not run",
            "rerun with --debug for a traceback and report it",
        )
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
    return _report(cl, args)


def _run_checks(cl: Checklist, args: argparse.Namespace) -> None:
    from .. import paths
    from ..errors import PortableCredsError

    timeout = float(getattr(args, "timeout", 5.0))
    resolved = _config_checks(cl, args)
    settings = None
    if resolved is not None:
        try:
            settings = _common.resolve_settings(args)
        except PortableCredsError as exc:
            cl.add(
                "backend",
                FAIL,
                str(exc),
                "set --backend / PORTABLE_CREDS_BACKEND to a valid URL or name",
            )

    if settings is not None and resolved is not None:
        from ..registry import load_driver_class, scheme_of

        backend = settings.backend
        scheme = ""
        try:
            scheme = scheme_of(backend)
            load_driver_class("http" if scheme == "https" else scheme)
            cl.add("backend driver", OK, f"{backend} ({settings.backend_source})")
        except PortableCredsError as exc:
            cl.add(
                "backend driver", FAIL, str(exc), "install the driver package for this URL scheme"
            )
            scheme = ""

        wallet = settings.wallet
        if wallet:
            try:
                from ..names import validate_wallet

                wallet = validate_wallet(wallet)
                cl.add("wallet", OK, wallet)
            except PortableCredsError as exc:
                cl.add(
                    "wallet", FAIL, str(exc), "set --wallet / PORTABLE_CREDS_WALLET to 0x + 40 hex"
                )
                wallet = None
        else:
            cl.add(
                "wallet",
                FAIL,
                "no wallet configured",
                "pass --wallet 0x..., set PORTABLE_CREDS_WALLET or 'config set wallet 0x...'",
            )

        key_path = settings.secret_file or paths.root_key_path(settings.home)
        if key_path.exists():
            mode = key_path.stat().st_mode & 0o777
            if mode & 0o077:
                cl.add("root secret", FAIL, f"{key_path} is mode {mode:o}", f"chmod 600 {key_path}")
            else:
                cl.add("root secret", OK, f"{key_path} (mode {mode:o})")
        elif scheme == "local" and settings.secret_file is None:
            cl.add("root secret", OK, f"{key_path} will be created on first use")
        else:
            cl.add(
                "root secret",
                FAIL,
                f"no root secret at {key_path}",
                "copy the root secret that sealed this backend's data there, "
                "or set PORTABLE_CREDS_SECRET_FILE",
            )

        if scheme in ("http", "https"):
            _legacy_probe(
                cl,
                "legacy backend (store)",
                backend,
                resolved["legacy_token"].value,
                wallet,
                timeout,
            )
        if scheme and wallet:
            try:
                # The object store alone: reachability, credentials, STS exchange - without
                # touching the key source (doctor must not create a root secret).
                from ..names import credentials_prefix, service_from_key
                from ..registry import open_object_store

                options: dict[str, Any] = {}
                if scheme == "local" and settings.home is not None:
                    options["home"] = str(settings.home)
                if scheme in ("http", "https") and resolved["legacy_token"].value:
                    options["token"] = resolved["legacy_token"].value
                with open_object_store(backend, wallet=wallet, **options) as objects:
                    # What 'list' counts: valid credential names only (not temp files, not
                    # objects whose names portable-creds would never write).
                    count = len(
                        {
                            service
                            for info in objects.list(credentials_prefix(wallet, settings.prefix))
                            if (service := service_from_key(info.key, wallet, settings.prefix))
                            is not None
                        }
                    )
                    backend_id = objects.backend_id
                    scoped_credentials = str(objects.capabilities.scoped_credentials)
                cl.add(
                    "store", OK, f"opened and listed {backend}: {count} credential(s) for {wallet}"
                )
                _scoping_check(cl, args, backend_id, scoped_credentials)
            except PortableCredsError as exc:
                fix = {
                    "CredentialsError": "refresh the identity token (OIDC / session); "
                    "check the role trust",
                    "ExpiredCredentials": "refresh the identity token",
                    "InvalidToken": "the identity service refused the token: "
                    "check issuer, audience, expiry",
                    "AccessDenied": "check the bucket/role policy "
                    "(portable-creds admin ... render) for this wallet",
                    "RemoteUnavailable": "check the endpoint URL, network and that the "
                    "service is up",
                    "ConfigurationError": "fix the configuration named in the message",
                    "KeySourceError": "check the key source (root secret / signer)",
                }
                cl.add(
                    "store",
                    FAIL,
                    str(exc),
                    next(
                        (
                            v
                            for k, v in fix.items()
                            if any(c.__name__ == k for c in type(exc).__mro__)
                        ),
                        "see the message",
                    ),
                )
                cl.add("scoping", SKIP, "store not reachable")

        legacy_url = resolved["legacy_url"]
        if legacy_url.source != "default" and resolved["legacy_token"].value:
            _legacy_probe(
                cl,
                "legacy backend (migration source)",
                str(legacy_url.value),
                resolved["legacy_token"].value,
                wallet,
                timeout,
            )
        _check_token(
            cl, "legacy token", resolved["legacy_token"].value, resolved["legacy_token"].source
        )
        _check_token_file(cl, backend)
        signer = resolved["signer_url"].value
        if signer:
            _signer_probe(
                cl,
                signer,
                resolved["signer_token"].value,
                resolved["omni_account"].value,
                wallet,
                timeout,
            )
            _check_token(
                cl, "signer token", resolved["signer_token"].value, resolved["signer_token"].source
            )

        from ..outbox import Outbox

        pending = Outbox(paths.outbox_dir(settings.home)).pending()
        if pending:
            cl.add(
                "outbox",
                FAIL,
                f"{len(pending)} sealed write(s) not yet delivered",
                "run 'portable-creds outbox flush' once the backend is reachable",
            )
        else:
            cl.add("outbox", OK, "no pending writes")

        audit = resolved["audit"]
        if audit.value:
            from ..audit import JsonLinesSink, open_sink

            try:
                sink = open_sink(audit.value)
                if isinstance(sink, JsonLinesSink):
                    paths.ensure_private_dir(sink.path.parent)
                    if sink.path.exists() and not os.access(sink.path, os.W_OK):
                        raise PermissionError(f"{sink.path} is not writable")
                cl.add("audit sink", OK, sink.description)
            except (PortableCredsError, OSError) as exc:
                cl.add(
                    "audit sink",
                    FAIL,
                    str(exc),
                    "set --audit / PORTABLE_CREDS_AUDIT to file:PATH, stderr or logging",
                )
        else:
            cl.add(
                "audit sink",
                WARN,
                "no audit sink configured",
                "set PORTABLE_CREDS_AUDIT=file:~/.local/state/portable-creds/audit.jsonl",
            )

    if cl.server_times:
        worst = max(cl.server_times, key=lambda t: abs(t[1] - t[2]))
        skew = worst[1] - worst[2]
        # Date headers have 1 s resolution: anything below 2 s is noise.
        if abs(skew) > MAX_SKEW:
            cl.add(
                "clock skew",
                FAIL,
                f"{worst[0]} is {skew:+.0f} s from this machine's clock",
                "synchronise the clock (NTP: timedatectl set-ntp true)",
            )
        else:
            cl.add(
                "clock skew",
                OK,
                f"within {max(abs(skew), 2.0):.0f} s of {len(cl.server_times)} endpoint(s)",
            )
    else:
        cl.add("clock skew", SKIP, "no endpoint reported its time", "")
    _drift_check(cl, args, settings.backend if settings is not None else None)


def _report(cl: Checklist, args: argparse.Namespace) -> int:
    if _common.flag(args, "json"):
        doc: dict[str, Any] = {"ok": not cl.failed, "checks": cl.checks}
        if cl.scoped_credentials is not None:
            doc["scoped_credentials"] = cl.scoped_credentials
        _common.print_json(doc)
    else:
        marks = {OK: " ok ", WARN: "warn", FAIL: "FAIL", SKIP: "skip"}
        for c in cl.checks:
            sys.stdout.write(f"[{marks[c['status']]}] {c['name']}: {c['detail']}\n")
            if c["status"] in (FAIL, WARN) and c["fix"]:
                sys.stdout.write(f"       fix: {c['fix']}\n")
        failures = sum(c["status"] == FAIL for c in cl.checks)
        sys.stdout.write("all checks passed\n" if not failures else f"{failures} check(s) failed\n")
    return 1 if cl.failed else 0
