"""What mcp2_demo.py (mcp 2.x, in py-otel) and mcp1_demo.py (mcp 1.x +
OpenLLMetry, in py-mcp1) share: arguments, the agent-side audit points, the
server process's span report, and the summary line.

The client process (the "agent") spawns the same script with `--serve` as
an MCP stdio server (tools lookup_order and refund_order). Each process has
its own TracerProvider exporting to the endpoint; the server's spans join
the client's trace through the W3C trace context the SDK / instrumentation
carries in the request's `_meta`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import _otlp

TOOLS = ("lookup_order", "refund_order")
POINTS = ("identity", "agent", "permission", "result")


def parse(doc: str, *, grpc: bool, modes: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    _otlp.add_common_args(p, grpc=grpc)
    p.add_argument(
        "--points",
        default="identity,permission,result",
        help="audit points the agent emits as log records (comma list of identity, agent, "
        "permission, result; or none). The permission covers lookup_order only. "
        "Default identity,permission,result",
    )
    p.add_argument("--refund", action="store_true", help="also call refund_order (no permission covers it)")
    p.add_argument("--no-root", action="store_true", help="no invoke_agent root span around the session")
    p.add_argument("--user", default="user-42")
    if modes:
        p.add_argument("--mode", choices=modes, default=modes[0], help="MCP connect mode")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--report", help=argparse.SUPPRESS)
    args = p.parse_args()
    _otlp.check_endpoint(p, args)
    pts = [] if args.points in ("", "none") else args.points.split(",")
    for x in pts:
        if x not in POINTS:
            p.error(f"--points: unknown point {x!r}")
    args.points = pts
    return args


def server_argv(script: str, args: argparse.Namespace, report: str) -> list[str]:
    argv = [script, "--serve", "--report", report, "--endpoint", args.endpoint, "--protocol", args.protocol]
    argv += ["--timeout", str(args.timeout)]
    if args.gzip:
        argv.append("--gzip")
    return argv


def server_env() -> dict[str, str]:
    """What the server process needs beyond the stdio transport's safe
    default environment."""
    env = {}
    for k in ("RINGTRAIL_TOKEN", "PYTHONPATH"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    return env


class ServerReport:
    """The server process's spans and export tally, rewritten to a file after
    every export (the server's stdout is the MCP channel)."""

    def __init__(self, path: str, exp: _otlp.CheckedSpanExporter, rec: _otlp.SpanRecorder) -> None:
        self.path, self.exp, self.rec = path, exp, rec
        inner = exp.export

        def export(spans):
            r = inner(spans)
            self.write()
            return r

        exp.export = export  # type: ignore[method-assign]

    def write(self) -> None:
        t = self.exp.tally
        data = {"spans": self.rec.spans, "exported": t.ok, "failed": t.failed, "errors": t.errors}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)


def read_report(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"spans": [], "exported": 0, "failed": 0, "errors": ["server wrote no report"]}


class Audit:
    """The agent's audit points as log records of scope "ringtrail::audit"
    with attribute audit.point (see otel_genai.py), in the current span."""

    def __init__(self, args: argparse.Namespace, res: Any, client_id: str) -> None:
        self.args = args
        self.client_id = client_id
        self.emitted: list[dict[str, Any]] = []
        self.lp = self.exp = self.logger = None
        if args.points:
            self.lp, self.exp = _otlp.logger_provider(args, res)
            self.logger = self.lp.get_logger("ringtrail::audit")

    def point(self, name: str, fields: dict[str, Any]) -> None:
        if name not in self.args.points:
            return
        from opentelemetry._logs import SeverityNumber
        from opentelemetry.trace import get_current_span

        self.logger.emit(
            timestamp=time.time_ns(),
            severity_text="INFO",
            severity_number=SeverityNumber.INFO,
            body=f"audit {name}",
            attributes={"audit.point": name, **fields},
        )
        sc = get_current_span().get_span_context()
        self.emitted.append(
            {
                "point": name,
                "trace_id": format(sc.trace_id, "032x") if sc.is_valid else None,
                **({"tool": fields["gen_ai.tool.name"]} if "gen_ai.tool.name" in fields else {}),
            }
        )

    def identity(self, session: str) -> None:
        self.point(
            "identity",
            {"user_id": self.args.user, "session_id": session, "client_id": self.client_id, "auth.method": "oidc"},
        )

    def agent(self) -> None:
        self.point(
            "agent",
            {
                "agent.id": "order-assistant",
                "agent.name": "Order assistant",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.provider.name": "openai",
                "mcp.server.name": "orders",
            },
        )

    def permission(self, tool: str) -> None:
        self.point(
            "permission",
            {"decision": "allow", "policy.id": "orders-policy", "policy.version": "7", "gen_ai.tool.name": tool},
        )

    def result(self, t0: int) -> None:
        self.point("result", {"outcome": "success", "duration_ns": time.monotonic_ns() - t0})

    def shutdown(self) -> None:
        if self.lp is not None:
            self.lp.shutdown()


def finish(
    client: str,
    args: argparse.Namespace,
    service: str,
    server_service: str,
    called: list[str],
    exp: _otlp.CheckedSpanExporter,
    rec: _otlp.SpanRecorder,
    audit: Audit,
    report: dict[str, Any],
    extra: dict[str, Any],
) -> int:
    spans = rec.spans
    trace_ids: list[str] = []
    for s in spans + report["spans"]:
        if s["trace_id"] not in trace_ids:
            trace_ids.append(s["trace_id"])
    summary = {
        "client": client,
        "protocol": args.protocol,
        "service": service,
        "server_service": server_service,
        **extra,
        "tools_called": called,
        # the agent's trace: the root span's (null with --no-root)
        "trace_id": next(
            (s["trace_id"] for s in spans if s["name"] == "invoke_agent order-assistant"), None
        ),
        "trace_ids": trace_ids,
        "points": audit.emitted,
        "client_spans": spans,
        "server_spans": report["spans"],
        "server_exported": report["exported"],
    }
    expect: dict[str, tuple[Any, int]] = {"spans": (exp, len(spans))}
    if audit.exp is not None:
        expect["logs"] = (audit.exp, len(audit.emitted))
    server_ok = not report["failed"] and report["exported"] == len(report["spans"]) and bool(report["spans"])
    if not server_ok:
        print(
            f"{client}: server exported {report['exported']} of {len(report['spans'])} spans, "
            f"failed {report['failed']}; errors: {report['errors'] or 'none'}",
            file=sys.stderr,
        )
    return _otlp.finish(summary, expect, server_ok)
