"""Finding harnesses: by driver name through entry points, or by an explicit ``module:attr``.

Driver packages register ``<driver> = package.module:HarnessClass`` under the entry-point group
``portable_creds_conformance.harnesses``; the class's ``targets`` lists the environments it can
run against. That pair (entry point + ``targets``) is the whole registry ``run_all`` walks, so a
driver package adds its targets without touching this repository.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys

from portable_creds.errors import ConfigurationError

from .harness import Harness

ENTRY_POINT_GROUP = "portable_creds_conformance.harnesses"


def registered() -> dict[str, importlib.metadata.EntryPoint]:
    """Harness entry points by driver name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _check(obj: object, origin: str) -> type[Harness]:
    if not (isinstance(obj, type) and issubclass(obj, Harness)):
        raise ConfigurationError(
            f"{origin} is not a portable_creds_conformance.Harness subclass"
        )
    if not isinstance(getattr(obj, "driver", None), str):
        raise ConfigurationError(f"{origin} must set the class attribute 'driver'")
    if not obj.targets:
        raise ConfigurationError(f"{origin} declares no targets")
    return obj


def from_spec(spec: str) -> type[Harness]:
    """``package.module:Attr``; the current directory is importable, as with ``python -m``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"--pc-harness {spec!r}: expected 'module:attribute', e.g. mypkg.conformance:MyHarness"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"--pc-harness {spec!r}: cannot import {module_name}: {exc}"
        ) from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"--pc-harness {spec!r}: {module_name} has no {attr}") from None
    return _check(obj, spec)


def by_driver(name: str) -> type[Harness]:
    """The harness registered for driver ``name``."""
    eps = registered()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise ConfigurationError(
            f"no conformance harness registered for driver {name!r} (registered: {known}); "
            f"install the driver package, or pass --pc-harness module:HarnessClass"
        )
    return _check(eps[name].load(), f"entry point {name} = {eps[name].value}")


def resolve(driver: str | None, spec: str | None) -> type[Harness]:
    if spec:
        cls = from_spec(spec)
        if driver and driver != cls.driver:
            raise ConfigurationError(
                f"--pc-harness {spec} is for driver {cls.driver!r}, not {driver!r}"
            )
        return cls
    if driver:
        return by_driver(driver)
    raise ConfigurationError("choose a driver: --pc-driver NAME or --pc-harness module:Class")


def pick_target(cls: type[Harness], target: str | None) -> str:
    if target is None:
        return cls.targets[0]
    if target not in cls.targets:
        raise ConfigurationError(
            f"driver {cls.driver!r} has no target {target!r} (targets: {', '.join(cls.targets)})"
        )
    return target
