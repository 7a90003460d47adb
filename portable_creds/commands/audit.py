"""``audit tail|query``: read the JSON-lines audit log; the global ``--audit SINK`` option."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import _common


def add_global_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("audit")
    g.add_argument(
        "--audit",
        metavar="SINK",
        help="audit sink: file:PATH (JSON lines, 0600), stderr, logging[:NAME] or none "
        "[env PORTABLE_CREDS_AUDIT; profile key 'audit']",
    )


def register(subparsers: Any) -> None:
    p = _common.add_command(
        subparsers,
        "audit",
        help="read the audit log (one event per operation, never secrets)",
        description=(
            "Every operation emits one event: time, wallet, service, operation, backend,\n"
            "outcome, request id, error type. 'tail' and 'query' read a file:PATH sink\n"
            "(the one configured with --audit / PORTABLE_CREDS_AUDIT, or --file)."
        ),
        epilog=(
            "examples:\n"
            "  export PORTABLE_CREDS_AUDIT=file:~/.local/state/portable-creds/audit.jsonl\n"
            "  portable-creds audit tail -n 20\n"
            "  portable-creds audit query --wallet 0xabc... --outcome error --json"
        ),
    )
    sub = p.add_subparsers(title="actions", metavar="ACTION", dest="audit_action")

    tail = _common.add_command(
        sub,
        "tail",
        help="the last N events (--follow to keep reading)",
        description=(
            "Print the last N events of the audit log. With --json: one JSON object per\n"
            "line (JSON Lines, so --follow can stream them)."
        ),
        epilog=(
            "examples:\n"
            "  portable-creds --audit file:audit.jsonl audit tail -n 20\n"
            "  portable-creds audit tail --follow --json"
        ),
    )
    tail.add_argument("-n", "--lines", type=int, default=10, metavar="N")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("--file", metavar="PATH", help="the JSON-lines log to read")
    tail.set_defaults(func=cmd_tail)

    q = _common.add_command(
        sub,
        "query",
        help="events matching filters",
        epilog=(
            "examples:\n"
            "  portable-creds audit query --operation get --since 2026-01-31T00:00:00Z\n"
            "  portable-creds audit query --outcome error --json"
        ),
    )
    q.add_argument("--file", metavar="PATH", help="the JSON-lines log to read")
    q.add_argument("--service")
    q.add_argument(
        "--operation", help="put, get, list, delete, teardown, rewrap, flush, migrate, run"
    )
    q.add_argument("--outcome", choices=("ok", "error"))
    q.add_argument("--since", metavar="TIME", help="ISO-8601, e.g. 2026-01-31T00:00:00Z")
    q.add_argument("--until", metavar="TIME")
    q.set_defaults(func=cmd_query)

    def no_action(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=no_action)


def _log_path(args: argparse.Namespace) -> str:
    from ..audit import JsonLinesSink, open_sink, sink_spec

    explicit = getattr(args, "file", None)
    if explicit:
        return str(explicit)
    spec = sink_spec(args)
    if spec:
        sink = open_sink(spec)
        if isinstance(sink, JsonLinesSink):
            return str(sink.path)
    _common.fail(
        "no audit log file configured; pass --file PATH, or set --audit file:PATH / "
        "PORTABLE_CREDS_AUDIT=file:PATH (stderr and logging sinks cannot be read back)",
        code="configuration",
    )


def _print(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
        return
    parts = [
        str(event.get("time") or "-"),
        f"{event.get('operation') or '-':<9}",
        f"{event.get('outcome') or '-':<5}",
        str(event.get("wallet") or "-"),
        str(event.get("service") or "-"),
        str(event.get("backend") or "-"),
    ]
    if event.get("error"):
        parts.append(f"error={event['error']}")
    if event.get("request_id"):
        parts.append(f"request_id={event['request_id']}")
    sys.stdout.write("  ".join(parts) + "\n")


def cmd_tail(args: argparse.Namespace) -> int:
    from ..audit import follow, read_events

    path = _log_path(args)
    as_json = _common.flag(args, "json")
    events = list(read_events(path))
    for event in events[-max(args.lines, 0) :] if args.lines else []:
        _print(event, as_json)
    sys.stdout.flush()
    if args.follow:
        for event in follow(path):
            _print(event, as_json)
            sys.stdout.flush()
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from ..audit import query

    path = _log_path(args)
    events = query(
        path,
        wallet=getattr(args, "wallet", None),
        service=args.service,
        operation=args.operation,
        outcome=args.outcome,
        since=args.since,
        until=args.until,
    )
    if _common.flag(args, "json"):
        _common.print_json({"events": events})
        return 0
    for event in events:
        _print(event, False)
    return 0
