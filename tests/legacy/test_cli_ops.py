"""CLI subprocess tests for `run`, `doctor`, `config` and `audit`."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from portable_creds.testing.legacy_server import LegacyServer

from .conftest import TOKEN, WALLET_A, WALLET_B, clean_env, run_cli

PRINT_ENV = (
    "import os,sys; "
    "print(repr({k: v for k, v in os.environ.items() if k.endswith(('_API_KEY', 'MYVAR'))})); "
    "sys.exit(int(sys.argv[1]))"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(
        tmp_path, PORTABLE_CREDS_HOME=str(tmp_path / "state"), PORTABLE_CREDS_WALLET=WALLET_A
    )


def put(env: dict[str, str], service: str, secret: bytes, *extra: str) -> None:
    proc = run_cli([*extra, "put", service, "--raw"], env, input=secret)
    assert proc.returncode == 0, proc.stderr


# -- run ---------------------------------------------------------------------------------------


def test_run_injects_every_credential_and_propagates_exit_code(
    env: dict[str, str], tmp_path: Path
) -> None:
    put(env, "openai", b"sk-run-1")
    put(env, "git-hub", b"ghp-run-2")
    proc = run_cli(["run", "--", sys.executable, "-c", PRINT_ENV, "42"], env)
    assert proc.returncode == 42
    seen = eval(proc.stdout.decode())  # the child's repr of a dict of str
    assert seen == {"OPENAI_API_KEY": "sk-run-1", "GIT_HUB_API_KEY": "ghp-run-2"}
    assert b"sk-run-1" not in proc.stderr
    # nothing but sealed blobs anywhere under the test's directories
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"sk-run-1" not in path.read_bytes(), path


def test_run_env_mapping_and_service_selection(env: dict[str, str]) -> None:
    put(env, "openai", b"sk-1")
    put(env, "other", b"o-2")
    proc = run_cli(
        [
            "run",
            "--env",
            "MYVAR=openai",
            "--service",
            "other",
            "--",
            sys.executable,
            "-c",
            PRINT_ENV,
            "0",
        ],
        env,
    )
    assert proc.returncode == 0, proc.stderr
    assert eval(proc.stdout.decode()) == {"MYVAR": "sk-1", "OTHER_API_KEY": "o-2"}


def test_run_failures(env: dict[str, str]) -> None:
    put(env, "openai", b"sk-1")
    missing = run_cli(["run", "--service", "nope", "--", sys.executable, "-c", "print('ran')"], env)
    assert missing.returncode == 3 and b"ran" not in missing.stdout
    no_cmd = run_cli(["run"], env)
    assert no_cmd.returncode == 2
    bad_var = run_cli(["run", "--env", "1X=openai", "--", "true"], env)
    assert bad_var.returncode == 2
    not_found = run_cli(["run", "--", "definitely-not-a-command-xyz"], env)
    assert not_found.returncode == 127


def test_run_refuses_nul_bytes(env: dict[str, str]) -> None:
    put(env, "bin", b"a\x00b")
    proc = run_cli(["run", "--", sys.executable, "-c", "print('ran')"], env)
    assert proc.returncode == 8 and b"ran" not in proc.stdout


# -- config ------------------------------------------------------------------------------------


def test_config_set_show_and_precedence(env: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work-store"
    assert (
        run_cli(
            ["config", "set", "backend", f"local://{work}", "--profile", "work"], env
        ).returncode
        == 0
    )
    assert (
        run_cli(
            ["config", "set", "legacy_token", "--profile", "work"],
            env,
            input=b"super-secret-token-value",
        ).returncode
        == 0
    )
    cfg = tmp_path / "config" / "portable-creds" / "config.toml"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700

    show = run_cli(["--profile", "work", "config", "show", "--json"], env)
    assert show.returncode == 0
    assert b"super-secret-token-value" not in show.stdout
    settings = json.loads(show.stdout)["settings"]
    assert settings["backend"] == {
        "value": f"local://{work}",
        "source": "profile work",
        "secret": False,
    }
    assert settings["legacy_token"]["source"] == "profile work"
    assert settings["legacy_token"]["value"] != "super-secret-token-value"
    assert settings["prefix"]["source"] == "default"

    # env beats the profile, the flag beats env
    env2 = {**env, "PORTABLE_CREDS_BACKEND": "local:///from-env"}
    s = json.loads(run_cli(["--profile", "work", "config", "show", "--json"], env2).stdout)[
        "settings"
    ]
    assert (s["backend"]["value"], s["backend"]["source"]) == (
        "local:///from-env",
        "PORTABLE_CREDS_BACKEND",
    )
    s = json.loads(
        run_cli(
            ["--profile", "work", "--backend", "local:///flag", "config", "show", "--json"], env2
        ).stdout
    )["settings"]
    assert (s["backend"]["value"], s["backend"]["source"]) == ("local:///flag", "--backend")

    # the profile really drives the store: a put lands under the profile's backend directory
    put(env, "openai", b"sk-profile", "--profile", "work")
    assert list(work.rglob("openai.enc"))
    env3 = {**env, "PORTABLE_CREDS_PROFILE": "work"}
    assert run_cli(["get", "openai"], env3).stdout == b"sk-profile"
    assert run_cli(["get", "openai"], env).returncode == 3  # default profile: another store


def test_config_errors(env: dict[str, str], tmp_path: Path) -> None:
    assert run_cli(["config", "set", "nonsense", "x"], env).returncode == 6
    assert run_cli(["config", "set", "wallet", "0x12"], env).returncode == 8
    missing = run_cli(["--profile", "ghost", "list"], env)
    assert missing.returncode == 6 and b"ghost" in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    broken = run_cli(["--config", str(bad), "config", "show"], env)
    assert broken.returncode == 6 and b"not valid TOML" in broken.stderr
    path = run_cli(["--config", str(bad), "config", "path"], env)
    assert path.stdout.decode().strip() == str(bad)


def test_config_default_profile_from_file(env: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "explicit.toml"
    cfg.write_text('profile = "team"\n[profiles.team]\nprefix = "teamprefix"\n')
    s = json.loads(run_cli(["--config", str(cfg), "config", "show", "--json"], env).stdout)
    assert s["profile"] == "team" and s["settings"]["prefix"]["value"] == "teamprefix"
    assert json.loads(
        run_cli(["--config", str(cfg), "config", "profiles", "--json"], env).stdout
    ) == {"profiles": ["team"]}


# -- doctor ------------------------------------------------------------------------------------


def test_doctor_passes_on_a_working_configuration(env: dict[str, str], tmp_path: Path) -> None:
    put(env, "openai", b"sk")
    env = {**env, "PORTABLE_CREDS_AUDIT": f"file:{tmp_path / 'audit.jsonl'}"}
    proc = run_cli(["doctor", "--json"], env)
    assert proc.returncode == 0, proc.stdout
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True
    statuses = {c["name"]: c["status"] for c in doc["checks"]}
    assert (
        statuses["store"] == "ok" and statuses["outbox"] == "ok" and statuses["root secret"] == "ok"
    )
    assert "fail" not in statuses.values()
    text = run_cli(["doctor"], env)
    assert text.returncode == 0 and text.stdout.decode().rstrip().endswith("all checks passed")


def test_doctor_fails_with_a_fix_for_each_failure(env: dict[str, str], tmp_path: Path) -> None:
    with LegacyServer({TOKEN: None}) as srv:
        put(env, "openai", b"sk")  # creates the root secret
        expired_jwt = ".".join(
            [
                base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("="),
                base64.urlsafe_b64encode(json.dumps({"exp": int(time.time()) - 60}).encode())
                .decode()
                .rstrip("="),
                "sig",
            ]
        )
        bad = {**env, "PORTABLE_CREDS_BACKEND": srv.url, "PORTABLE_CREDS_LEGACY_TOKEN": expired_jwt}
        proc = run_cli(["doctor", "--json"], bad)
        assert proc.returncode == 1
        checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
        assert checks["legacy backend (store)"]["status"] == "fail"
        assert checks["store"]["status"] == "fail"
        assert (
            checks["legacy token"]["status"] == "fail"
            and "expired" in checks["legacy token"]["detail"]
        )
        assert checks["legacy encryption"]["status"] == "warn"
        assert checks["clock skew"]["status"] == "ok"  # the server's Date header was compared
        for c in checks.values():
            if c["status"] == "fail":
                assert c["fix"], c
        text = run_cli(["doctor"], bad)
        assert text.returncode == 1
        assert "fix:" in text.stdout.decode() and "check(s) failed" in text.stdout.decode()
        assert expired_jwt.encode() not in text.stdout + text.stderr

        good = {**bad, "PORTABLE_CREDS_LEGACY_TOKEN": TOKEN}
        ok = json.loads(run_cli(["doctor", "--json"], good).stdout)
        checks = {c["name"]: c["status"] for c in ok["checks"]}
        assert checks["legacy backend (store)"] == "ok" and checks["store"] == "ok"


def test_doctor_reports_outbox_backlog_and_missing_wallet(
    env: dict[str, str], tmp_path: Path
) -> None:
    with LegacyServer({TOKEN: None}) as srv:
        url = srv.url
    # the backend is down: the put fails, the sealed secret stays in the outbox
    down = {**env, "PORTABLE_CREDS_BACKEND": url, "PORTABLE_CREDS_LEGACY_TOKEN": TOKEN}
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "root.key").write_bytes(os.urandom(32))
    os.chmod(tmp_path / "state" / "root.key", 0o600)
    assert run_cli(["put", "openai"], down, input=b"sk").returncode != 0
    local = {k: v for k, v in env.items() if k != "PORTABLE_CREDS_WALLET"}
    doc = json.loads(run_cli(["doctor", "--json"], local).stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["outbox"]["status"] == "fail" and "outbox flush" in checks["outbox"]["fix"]
    assert checks["wallet"]["status"] == "fail"
    assert doc["ok"] is False


# -- audit -------------------------------------------------------------------------------------


def test_audit_events_for_run_and_migrate_and_query(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "logs" / "audit.jsonl"
    env = {**env, "PORTABLE_CREDS_AUDIT": f"file:{log}", "PORTABLE_CREDS_LEGACY_TOKEN": TOKEN}
    put(env, "openai", b"sk-audit-secret")
    assert run_cli(["run", "--", "true"], env).returncode == 0
    with LegacyServer({TOKEN: None}) as srv:
        srv.seed(WALLET_B, "svc", b"legacy-audit-secret")
        assert run_cli(["migrate", "--from-legacy", srv.url, WALLET_B], env).returncode == 0
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    raw = log.read_bytes()
    assert b"sk-audit-secret" not in raw and b"legacy-audit-secret" not in raw
    events = [json.loads(line) for line in raw.splitlines()]
    assert {"time", "wallet", "service", "operation", "backend", "outcome", "request_id"} <= set(
        events[0]
    )
    ops = [e["operation"] for e in events]
    assert "run" in ops and "migrate" in ops
    (per_wallet,) = [e for e in events if e["operation"] == "migrate-wallet"]
    assert per_wallet["wallet"] == WALLET_B and per_wallet["outcome"] == "ok"

    q = run_cli(["audit", "query", "--operation", "run", "--json"], env)
    assert q.returncode == 0
    found = json.loads(q.stdout)["events"]
    assert [e["operation"] for e in found] == ["run"] and found[0]["wallet"] == WALLET_A
    assert found[0]["outcome"] == "ok"

    tail = run_cli(["audit", "tail", "-n", "1", "--json"], env)
    assert json.loads(tail.stdout) == events[-1]
    none = run_cli(["audit", "query", "--since", "2999-01-01T00:00:00Z", "--json"], env)
    assert json.loads(none.stdout) == {"events": []}


def test_audit_records_failures_without_messages(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    env = {**env, "PORTABLE_CREDS_AUDIT": f"file:{log}"}
    assert run_cli(["run", "--service", "missing", "--", "true"], env).returncode == 3
    q = json.loads(run_cli(["audit", "query", "--outcome", "error", "--json"], env).stdout)[
        "events"
    ]
    assert any(e["operation"] == "run" and e["error"] == "NotFound" for e in q)


def test_audit_without_a_file_sink_is_a_configuration_error(env: dict[str, str]) -> None:
    proc = run_cli(["audit", "tail"], env)
    assert proc.returncode == 6 and b"--file" in proc.stderr


def test_doctor_creates_nothing(env: dict[str, str], tmp_path: Path) -> None:
    proc = run_cli(["doctor", "--json"], env)
    assert proc.returncode == 0, proc.stdout
    assert not (tmp_path / "state" / "root.key").exists()


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("kek_version", "two", 6),
        ("audit", "syslog://x", 6),
        ("omni_account", "12", 6),
        ("prefix", "../x", 8),
    ],
)
def test_config_set_validates_values(env: dict[str, str], key: str, value: str, code: int) -> None:
    proc = run_cli(["config", "set", key, value], env)
    assert proc.returncode == code, proc.stderr
    assert run_cli(["config", "profiles", "--json"], env).stdout.strip() == b'{"profiles": []}'


def test_doctor_detects_clock_skew(env: dict[str, str]) -> None:
    put(env, "openai", b"sk")
    with LegacyServer({TOKEN: None}) as srv:
        srv.clock_offset = 3600.0
        skewed = {**env, "PORTABLE_CREDS_BACKEND": srv.url, "PORTABLE_CREDS_LEGACY_TOKEN": TOKEN}
        proc = run_cli(["doctor", "--json"], skewed)
        checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
        assert proc.returncode == 1
        assert checks["clock skew"]["status"] == "fail" and "NTP" in checks["clock skew"]["fix"]
        assert checks["store"]["status"] == "ok"


def test_doctor_checks_the_signer(env: dict[str, str]) -> None:
    from portable_creds.testing.signer_server import SignerServer

    put(env, "openai", b"sk")
    with SignerServer(token="signer-token") as signer:
        with_signer = {**env, "AGENTKEYS_SIGNER_URL": signer.url}
        bad = json.loads(run_cli(["doctor", "--json"], with_signer).stdout)
        check = next(c for c in bad["checks"] if c["name"] == "signer")
        assert check["status"] == "fail" and "401" in check["detail"] and check["fix"]
        good_env = {**with_signer, "AGENTKEYS_SIGNER_TOKEN": "signer-token"}
        proc = run_cli(["doctor", "--json"], good_env)
        good = json.loads(proc.stdout)
        assert next(c for c in good["checks"] if c["name"] == "signer")["status"] == "ok"
        assert proc.returncode == 0


def test_doctor_checks_an_identity_token_file(env: dict[str, str], tmp_path: Path) -> None:
    put(env, "openai", b"sk")
    token_file = tmp_path / "oidc.jwt"
    payload = json.dumps({"exp": int(time.time()) - 5}).encode()
    token_file.write_text("e30." + base64.urlsafe_b64encode(payload).decode().rstrip("=") + ".sig")
    backend = f"local://{tmp_path / 'state' / 'objects'}?token_file={token_file}"
    doc = json.loads(run_cli(["--backend", backend, "doctor", "--json"], env).stdout)
    check = next(c for c in doc["checks"] if c["name"] == "identity token")
    assert check["status"] == "fail" and "expired" in check["detail"]
