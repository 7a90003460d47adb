"""The boto3 web-identity variables (``AWS_ROLE_ARN``, ``AWS_WEB_IDENTITY_TOKEN_FILE``,
``AWS_ROLE_SESSION_NAME``), as EKS (IRSA) and GitHub OIDC set them, through the real CLI.

RGW proves the federation really happens with what the variables name (RGW validates the token
and evaluates the role); moto shows which session name reached STS (its ``GetCallerIdentity``
answers the assumed-role ARN, which ends in the session name).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import boto3
import pytest
from portable_creds_aws.settings import parse_settings

from portable_creds.driver import StoreTarget
from portable_creds.errors import ConfigurationError

from ..scoping._cli import ERROR_PREFIX, run_cli, stderr_of
from .conftest import REGION, RgwDeployment, moto_url, random_wallet

ROLE = "arn:aws:iam::123456789012:role/agentkeys-data-role"
OTHER_ROLE = "arn:aws:iam::123456789012:role/not-the-data-role"


def _cli(  # type: ignore[no-untyped-def]
    home: Path, backend: str, wallet: str, *args: str, env: dict[str, str], input: bytes = b""
):
    secret = home / "root.key"
    if not secret.exists():
        secret.write_bytes(secrets.token_bytes(32))
        secret.chmod(0o600)
    return run_cli(
        home, "--backend", backend, "--wallet", wallet, "--secret-file", str(secret),
        "--home", str(home / "data"), *args, input=input, env=env,
    )


# ------------------------------------------------------------------ settings precedence
def test_tenant_settings_take_the_variables_and_url_parameters_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "env.jwt"))
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "ci-job-42")
    w = random_wallet()
    s = parse_settings(StoreTarget(url="s3://ok-bucket", wallet=w))
    assert (s.role_arn, s.token_file, s.session_name) == (ROLE, str(tmp_path / "env.jwt"),
                                                          "ci-job-42")
    s = parse_settings(
        StoreTarget(
            url=f"s3://ok-bucket?role_arn={OTHER_ROLE}&token_file=/url.jwt&session_name=from-url",
            wallet=w,
        )
    )
    assert (s.role_arn, s.token_file, s.session_name) == (OTHER_ROLE, "/url.jwt", "from-url")
    # A broker in the URL is a token source too: the variable's file does not override it.
    s = parse_settings(StoreTarget(url="s3://ok-bucket?broker_url=http://127.0.0.1:1", wallet=w))
    assert s.token_file is None and s.broker_url == "http://127.0.0.1:1"
    # The administrator's view and explicit static keys leave the variables to botocore.
    assert parse_settings(StoreTarget(url="s3://ok-bucket", wallet=None)).role_arn is None
    keys = {"access_key": "a", "secret_key": "b"}
    static = parse_settings(StoreTarget(url="s3://ok-bucket", wallet=w, options=keys))
    assert static.role_arn is None


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"AWS_ROLE_ARN": "not-an-arn"}, "AWS_ROLE_ARN='not-an-arn' is not an IAM role ARN"),
        ({"AWS_ROLE_ARN": ROLE, "AWS_ROLE_SESSION_NAME": "has space"}, "AWS_ROLE_SESSION_NAME"),
        ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t.jwt"}, "set AWS_ROLE_ARN or add role_arn="),
    ],
)
def test_bad_variables_are_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=needle):
        parse_settings(StoreTarget(url="s3://ok-bucket", wallet=random_wallet()))


# ------------------------------------------------------------------ the CLI, shell users
PYTHON_SPEAK = ("=True", "open_store", "token=<", "allow_static_tenant", "keyword", "option")


def test_cli_error_for_a_missing_role_speaks_shell(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "s3://ok-bucket?region=us-east-1", random_wallet(), "list", env={})
    err = stderr_of(proc)
    assert proc.returncode != 0 and ERROR_PREFIX in err
    assert "role_arn=arn:aws:iam::ACCOUNT:role/NAME" in err and "AWS_ROLE_ARN" in err
    assert not [word for word in PYTHON_SPEAK if word in err], err


def test_cli_error_for_a_missing_token_speaks_shell(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "s3://ok-bucket", random_wallet(), "list", env={"AWS_ROLE_ARN": ROLE})
    err = stderr_of(proc)
    assert proc.returncode != 0
    assert "AWS_ROLE_ARN needs an OIDC token: set AWS_WEB_IDENTITY_TOKEN_FILE" in err
    assert not [word for word in PYTHON_SPEAK if word in err], err


# ------------------------------------------------------------------ RGW: real federation
@pytest.mark.rgw
def test_cli_federates_with_the_boto3_variables(
    rgw_deployment: RgwDeployment, tmp_path: Path
) -> None:
    d = rgw_deployment
    wallet = random_wallet()
    d.provisioner.onboard(wallet)
    token = tmp_path / "token.jwt"
    token.write_text(d.issuer.token(wallet))
    token.chmod(0o600)
    backend = f"s3://{d.bucket}?region={REGION}&endpoint={d.endpoint.url}"
    env = {"AWS_ROLE_ARN": d.deployment.role_arn, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token)}
    proc = _cli(tmp_path, backend, wallet, "put", "github", env=env, input=b"ghp_env")
    assert proc.returncode == 0, stderr_of(proc)
    proc = _cli(tmp_path, backend, wallet, "get", "github", env=env)
    assert proc.returncode == 0 and proc.stdout.rstrip(b"\n") == b"ghp_env", stderr_of(proc)
    # The sealed blob is where the role lets only this wallet write: the federation was real.
    assert any(wallet in info.key for info in d.admin_store().list(f"bots/{wallet}/"))

    # URL parameters win: a wrong role in the variable is not used when the URL names one.
    env_wrong = {**env, "AWS_ROLE_ARN": "arn:aws:iam:::role/no-such-role"}
    proc = _cli(tmp_path, f"{backend}&role_arn={d.deployment.role_arn}", wallet, "get", "github",
                env=env_wrong)
    assert proc.returncode == 0 and proc.stdout.rstrip(b"\n") == b"ghp_env", stderr_of(proc)
    # ... and without it, the variable is what is used (and RGW refuses that role).
    proc = _cli(tmp_path, backend, wallet, "get", "github", env=env_wrong)
    assert proc.returncode != 0


# ------------------------------------------------------------------ moto: session name
def _caller_arn(moto_endpoint: str, exported: dict[str, str]) -> str:
    sts = boto3.client(
        "sts",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=exported["AWS_SESSION_TOKEN"],
    )
    return str(sts.get_caller_identity()["Arn"])


def test_session_name_comes_from_the_variable_and_the_url_wins(
    moto_endpoint: str, moto_bucket: str, tmp_path: Path
) -> None:
    token = tmp_path / "token.jwt"
    token.write_text("moto-accepts-any-token")
    env = {
        "AWS_ROLE_ARN": ROLE,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "AWS_ROLE_SESSION_NAME": "github-actions-run-7",
    }
    wallet = random_wallet()
    backend = moto_url(moto_endpoint, moto_bucket)
    args = ("creds", "export", "--scope", "github", "--format", "json")
    proc = _cli(tmp_path, backend, wallet, *args, env=env)
    assert proc.returncode == 0, stderr_of(proc)
    assert _caller_arn(moto_endpoint, json.loads(proc.stdout)).endswith(
        "assumed-role/agentkeys-data-role/github-actions-run-7"
    )
    proc = _cli(tmp_path, f"{backend}&session_name=from-the-url", wallet, *args, env=env)
    assert proc.returncode == 0, stderr_of(proc)
    assert _caller_arn(moto_endpoint, json.loads(proc.stdout)).endswith("/from-the-url")
