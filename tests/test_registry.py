"""The driver registry over real entry points (installed distributions, and fake ones on disk)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest

from portable_creds.errors import ConfigurationError, InvalidName
from portable_creds.local import LocalDriver, LocalObjectStore
from portable_creds.registry import (
    available_drivers,
    declared_entry_point,
    load_driver,
    open_object_store,
    scheme_of,
    token_source,
)

REPO = Path(__file__).resolve().parents[1]
A = "0x" + "a1" * 20

PROBE = textwrap.dedent(
    """
    import json, sys
    from portable_creds.errors import PortableCredsError
    from portable_creds.registry import available_drivers, load_driver
    out = {"available": sorted(available_drivers())}
    for name in sys.argv[1:]:
        try:
            out[name] = ["ok", type(load_driver(name)).__name__]
        except PortableCredsError as exc:
            out[name] = [type(exc).__name__, str(exc)]
    print(json.dumps(out))
    """
)


def run_probe(pythonpath: list[Path], names: list[str], *, isolated: bool) -> dict[str, Any]:
    """Ask a fresh interpreter what the registry says, with the given import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    argv = [sys.executable, *(["-S"] if isolated else []), "-c", PROBE, *names]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="module")
def core_only_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """site-packages as on a machine where only the core distribution is installed.

    A directory of symlinks to this environment's packages minus the cloud drivers (and minus
    ``.pth`` files, so their editable paths are not added either).
    """
    farm = tmp_path_factory.mktemp("core-only-site")
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        name = entry.name.lower()
        if name.endswith(".pth") or name.startswith(("portable_creds_", "_editable_impl")):
            continue
        (farm / entry.name).symlink_to(entry)
    return farm


def fake_distribution(directory: Path, dist: str, entry_points: dict[str, str]) -> None:
    info = directory / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ["[portable_creds.drivers]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_local_driver_is_registered() -> None:
    assert "local" in available_drivers()
    assert available_drivers()["local"].value == "portable_creds.local:LocalDriver"
    assert isinstance(load_driver("local"), LocalDriver)
    assert isinstance(load_driver("LOCAL"), LocalDriver)


def test_cold_lookup_agrees_with_importlib_metadata() -> None:
    """``declared_entry_point`` (what ``load_driver`` tries first, without importing
    ``importlib.metadata``) names the same object for every installed driver."""
    drivers = available_drivers()
    assert {"local", "s3", "cos"} <= set(drivers)
    for name, ep in drivers.items():
        assert declared_entry_point(name) == ep.value
    assert declared_entry_point("gcs") is None


def test_extras_and_comments_in_entry_points_txt(tmp_path: Path) -> None:
    fake_distribution(tmp_path, "pc_extras_driver", {"x1": "json:dumps [fast]"})
    text = (tmp_path / "pc_extras_driver-0.1.dist-info" / "entry_points.txt").read_text()
    (tmp_path / "pc_extras_driver-0.1.dist-info" / "entry_points.txt").write_text(
        "# comment\n[console_scripts]\nx1 = os:getcwd\n" + text
    )
    sys.path.insert(0, str(tmp_path))
    try:
        assert declared_entry_point("x1") == "json:dumps"
    finally:
        sys.path.remove(str(tmp_path))


def test_unknown_scheme_lists_installed_drivers() -> None:
    with pytest.raises(ConfigurationError) as err:
        load_driver("gcs")
    assert "'gcs'" in str(err.value)
    assert "local" in str(err.value)


def test_missing_cloud_drivers_name_the_package_to_install(core_only_site: Path) -> None:
    out = run_probe([core_only_site, REPO], ["s3", "aws", "cos", "tencent", "local"], isolated=True)
    available = out["available"]
    assert isinstance(available, list) and "local" in available
    assert not {"s3", "aws", "cos", "tencent"} & set(available)
    assert out["local"] == ["ok", "LocalDriver"]
    for name, package in [
        ("s3", "portable-creds-aws"),
        ("aws", "portable-creds-aws"),
        ("cos", "portable-creds-tencent"),
        ("tencent", "portable-creds-tencent"),
    ]:
        kind, message = out[name]
        assert kind == "ConfigurationError"
        assert f"pip install {package}" in message


def test_broken_and_bogus_entry_points(core_only_site: Path, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    fake_distribution(
        plugins,
        "broken_pc_driver",
        {
            "broken": "no_such_module_for_portable_creds:Driver",
            "s3": "no_such_module_for_portable_creds.aws:S3Driver",
            "bogus": "json:dumps",
        },
    )
    out = run_probe([plugins, core_only_site, REPO], ["broken", "s3", "bogus"], isolated=True)
    available = out["available"]
    assert isinstance(available, list)
    assert {"bogus", "broken", "local", "s3"} <= set(available)
    assert available == sorted(available)
    kind, message = out["broken"]
    assert kind == "ConfigurationError"
    assert "broken_pc_driver" in message and "cannot be imported" in message
    kind, message = out["s3"]
    assert kind == "ConfigurationError"
    assert "pip install portable-creds-aws" in message
    kind, message = out["bogus"]
    assert kind == "ConfigurationError"
    assert "not a portable_creds.driver.Driver subclass" in message


def test_registry_imports_no_cloud_sdk(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from portable_creds.registry import available_drivers, open_object_store
        names = sorted(available_drivers())
        store = open_object_store("local://{tmp_path}/objects", wallet=None)
        store.put("k/v", b"x")
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("boto3", "botocore", "qcloud_cos", "tencentcloud",
                                              "portable_creds_aws", "portable_creds_tencent"))
        print(",".join(names)); print(",".join(heavy))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    names, heavy = proc.stdout.splitlines()
    assert "local" in names.split(",")
    assert heavy == ""


def test_open_object_store_scopes_and_canonicalises(tmp_path: Path) -> None:
    url = f"local://{tmp_path}/objects"
    store = open_object_store(url, wallet=A.upper().replace("0X", "0x"))
    assert isinstance(store, LocalObjectStore)
    assert store.wallet == A
    admin = open_object_store(url, wallet=None)
    assert isinstance(admin, LocalObjectStore)
    assert admin.wallet is None
    admin.put("shared/x", b"1")
    assert admin.get("shared/x").data == b"1"
    with pytest.raises(InvalidName):
        open_object_store(url, wallet="not-a-wallet")


@pytest.mark.parametrize(
    ("url", "scheme"), [("local:", "local"), ("S3://bucket", "s3"), ("cos://b-125", "cos")]
)
def test_scheme_of(url: str, scheme: str) -> None:
    assert scheme_of(url) == scheme


@pytest.mark.parametrize("url", ["", "/abs/path", "bucket-name"])
def test_scheme_of_rejects_urls_without_scheme(url: str) -> None:
    with pytest.raises(ConfigurationError):
        scheme_of(url)


def test_token_source() -> None:
    fixed = token_source("eyJ.token")
    assert fixed is not None and fixed() == "eyJ.token"
    calls: list[int] = []

    def fresh() -> str:
        calls.append(1)
        return f"token-{len(calls)}"

    source = token_source(fresh)
    assert source is fresh
    assert token_source(None) is None
    with pytest.raises(ConfigurationError):
        token_source("")
    with pytest.raises(ConfigurationError):
        token_source(42)  # type: ignore[arg-type]


def test_unparseable_backend_url_is_a_configuration_error() -> None:
    from portable_creds.errors import ConfigurationError
    from portable_creds.opener import open_store
    from portable_creds.registry import scheme_of

    with pytest.raises(ConfigurationError, match="not a valid URL"):
        scheme_of("s3://[bucket")
    with pytest.raises(ConfigurationError, match="not a valid URL"):
        open_store("http://[::1", wallet="0x" + "a" * 40)


def test_first_declaration_on_sys_path_wins(core_only_site: Path, tmp_path: Path) -> None:
    """Two copies of one distribution, and two distributions declaring one name: the first on
    ``sys.path`` wins, as it did with ``importlib.metadata.entry_points()``; a distribution
    whose entry points are only in other groups contributes nothing."""
    first, second = tmp_path / "first", tmp_path / "second"
    fake_distribution(first, "pc_dup_driver", {"dup": "json:dumps", "own": "json:dumps"})
    fake_distribution(second, "pc_dup_driver", {"dup": "json:loads", "extra": "json:loads"})
    fake_distribution(second, "pc_other_driver", {"own": "json:loads"})
    other = second / "pc_unrelated-0.1.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: pc_unrelated\nVersion: 0.1\n")
    (other / "entry_points.txt").write_text("[console_scripts]\nunrelated = json:dumps\n")
    probe = (
        "import json; from portable_creds.registry import available_drivers, "
        "declared_entry_point as d; found = {k: v.value for k, v in available_drivers().items()}; "
        "print(json.dumps([found, {k: d(k) for k in [*found, 'extra', 'absent']}]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (first, second, core_only_site, REPO))
    proc = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                          env=env, cwd="/", timeout=120, check=True)
    found, fast = json.loads(proc.stdout)
    # The cold path's reading of entry_points.txt agrees with importlib.metadata's.
    assert fast == {**found, "extra": None, "absent": None}
    assert found["dup"] == "json:dumps"  # the first copy of pc_dup_driver
    assert "extra" not in found  # the second copy of the same distribution is shadowed
    assert found["own"] == "json:dumps"  # another distribution later on the path loses
    assert "unrelated" not in found and found["local"] == "portable_creds.local:LocalDriver"
