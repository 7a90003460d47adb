"""The audit log: one structured event per operation, never any secret material.

An event is ``{time, wallet, service, operation, backend, outcome, request_id, error}``:
``time`` ISO-8601 UTC, ``outcome`` ``ok`` or ``error``, ``error`` the exception *type* name
(messages are left out on purpose - they are for humans, and keeping them out means nothing a
driver ever puts in one can leak). Events whose keys are not in ``FIELDS`` are dropped key by
key, so a caller cannot smuggle a secret in under a new name.

Sinks: ``file:PATH`` (JSON lines, file 0600, appended with O_APPEND so concurrent writers don't
interleave inside a line), ``stderr``, ``logging[:NAME]`` (a Python logger, default
``portable_creds.audit``), ``none``. A sink is callable with an event mapping, which is exactly
``CredentialStore``'s ``audit=`` hook.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import attrs

from .audit_spec import parse_sink_spec
from .errors import ConfigurationError

FIELDS = ("time", "wallet", "service", "operation", "backend", "outcome", "request_id", "error")
ENV_AUDIT = "PORTABLE_CREDS_AUDIT"
DEFAULT_LOGGER = "portable_creds.audit"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: object) -> str | None:
    if value is None:
        return None
    return str(value)[:256]


def make_event(fields: Mapping[str, object]) -> dict[str, str | None]:
    """Normalise: only the known fields, strings (bounded), ``time`` filled in if missing."""
    event: dict[str, str | None] = {k: _clean(fields.get(k)) for k in FIELDS}
    if not event["time"]:
        event["time"] = _now()
    return event


class AuditSink(abc.ABC):
    """Where events go. ``emit`` must not raise for I/O trouble: auditing never breaks an operation
    (a failure is reported once on stderr instead)."""

    description: str = ""

    @abc.abstractmethod
    def write(self, event: dict[str, str | None]) -> None: ...

    def emit(self, event: Mapping[str, object]) -> None:
        try:
            self.write(make_event(event))
        except OSError as exc:
            _warn_once(
                self, f"audit sink {self.description} failed ({exc.strerror or exc}); event dropped"
            )

    __call__ = emit

    def close(self) -> None:  # noqa: B027 - optional
        pass


_warned: set[int] = set()


def _warn_once(sink: AuditSink, message: str) -> None:
    if id(sink) not in _warned:
        _warned.add(id(sink))
        print(f"portable-creds: warning: {message}", file=sys.stderr)


class JsonLinesSink(AuditSink):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self.description = f"file:{self.path}"

    def write(self, event: dict[str, str | None]) -> None:
        from .paths import ensure_private_dir

        ensure_private_dir(self.path.parent)
        line = (json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
            os.write(fd, line)
        finally:
            os.close(fd)


class StreamSink(AuditSink):
    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self.description = "stderr"

    def write(self, event: dict[str, str | None]) -> None:
        stream = self._stream or sys.stderr
        stream.write("audit: " + json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n")
        stream.flush()


class LoggingSink(AuditSink):
    def __init__(self, name: str = DEFAULT_LOGGER) -> None:
        self.logger = logging.getLogger(name)
        self.description = f"logging:{name}"

    def write(self, event: dict[str, str | None]) -> None:
        level = logging.INFO if event.get("outcome") == "ok" else logging.WARNING
        self.logger.log(level, "%s", json.dumps(event, sort_keys=True), extra={"audit": event})


class NullSink(AuditSink):
    description = "none"

    def write(self, event: dict[str, str | None]) -> None:
        return


def open_sink(spec: str) -> AuditSink:
    """``file:PATH`` (or a bare path), ``stderr``, ``logging[:NAME]``, ``none``."""
    kind, arg = parse_sink_spec(spec)
    if kind == "stderr":
        return StreamSink()
    if kind == "logging":
        return LoggingSink(arg or DEFAULT_LOGGER)
    if kind == "file":
        return JsonLinesSink(arg)
    return NullSink()


def sink_spec(args: Any = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The audit setting (``--audit`` > env > profile); ``args``: a mapping of flag values or
    an object holding them as attributes (the CLI's namespace)."""
    from . import config

    flags = None if args is None else args if isinstance(args, Mapping) else vars(args)
    return config.setting("audit", flags, environ)


def sink_for_cli(args: Any = None, environ: Mapping[str, str] | None = None) -> AuditSink | None:
    """The sink the CLI's settings name (``--audit`` > env > profile), ``None`` if none."""
    spec = sink_spec(args, environ)
    if not spec:
        return None
    sink = open_sink(spec)
    return None if isinstance(sink, NullSink) else sink


@attrs.frozen
class Recorder:
    """``with Recorder(sink, operation="migrate", wallet=w) as rec:`` - emits one event on exit.

    For operations outside ``CredentialStore`` (migrate, run): outcome ``ok`` unless the block
    raised; the exception type is recorded, its message is not.
    """

    sink: AuditSink | None
    operation: str
    wallet: str | None = None
    service: str | None = None
    backend: str | None = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if self.sink is None:
            return
        self.sink.emit(
            {
                "operation": self.operation,
                "wallet": self.wallet,
                "service": self.service,
                "backend": self.backend,
                "outcome": "ok" if exc_type is None else "error",
                "error": exc_type.__name__ if exc_type is not None else None,
                "request_id": getattr(exc, "request_id", None),
            }
        )


# -- reading ------------------------------------------------------------------------------


def read_events(path: Path | str) -> Iterator[dict[str, Any]]:
    """Events of a JSON-lines log, oldest first; unparsable lines are skipped."""
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as fh:
            for line in fh:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict):
                    yield doc
    except FileNotFoundError:
        return


def _parse_time(value: str) -> dt.datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"invalid time {value!r}; use ISO-8601, e.g. 2026-01-31T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def matches(
    event: Mapping[str, Any],
    *,
    wallet: str | None = None,
    service: str | None = None,
    operation: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> bool:
    if wallet and str(event.get("wallet") or "").lower() != wallet.lower():
        return False
    for key, want in (("service", service), ("operation", operation), ("outcome", outcome)):
        if want and event.get(key) != want:
            return False
    if since or until:
        try:
            when = _parse_time(str(event.get("time") or ""))
        except ConfigurationError:
            return False
        if since and when < _parse_time(since):
            return False
        if until and when > _parse_time(until):
            return False
    return True


def query(path: Path | str, **filters: str | None) -> list[dict[str, Any]]:
    return [e for e in read_events(path) if matches(e, **filters)]


def follow(path: Path | str, *, poll: float = 0.5) -> Iterator[dict[str, Any]]:
    """New events appended after the call, forever (``audit tail --follow``)."""
    p = Path(path).expanduser()
    offset = p.stat().st_size if p.exists() else 0
    buffer = b""
    while True:
        if p.exists():
            with open(p, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            offset += len(chunk)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict):
                    yield doc
        time.sleep(poll)
