#!/usr/bin/env python3
"""An MCP agent and server on the MCP Python SDK 1.x (no spans of its own),
instrumented by OpenLLMetry's opentelemetry-instrumentation-mcp
(McpInstrumentor().instrument() in both processes), spans to the endpoint
over OTLP/HTTP. Runs in the py-mcp1 venv.

The client spawns this script with --serve as a stdio MCP server (FastMCP
"orders" from mcp.server.fastmcp, tools lookup_order and refund_order),
initializes, lists the tools, calls lookup_order {"order": 17}, and with
--refund refund_order {"order": 17, "amount_cents": 500}. Client service
"mcp1-agent", server "mcp1-orders-server"; the instrumentation carries the
trace context in `_meta.traceparent`. Unless --no-root, the session runs
in a root span "invoke_agent order-assistant" (scope
"ringtrail.tests.mcp_demo"). Content capture (traceloop.entity.input /
output) is on unless TRACELOOP_TRACE_CONTENT=false.

--points, the audit log records and the stdout line are as for
mcp2_demo.py, with "client":"mcp1_demo", "mcp_version":"1.x.y" and
"instrumentation_version" instead of "mode".
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _mcp_demo  # noqa: E402
import _otlp  # noqa: E402
from opentelemetry import trace  # noqa: E402

SERVICE = "mcp1-agent"
SERVER_SERVICE = "mcp1-orders-server"


def instrument(tp) -> None:
    from opentelemetry.instrumentation.mcp import McpInstrumentor

    McpInstrumentor().instrument(tracer_provider=tp)


def serve(args) -> int:
    res = _otlp.resource(SERVER_SERVICE)
    tp, exp, rec = _otlp.tracer_provider(args, res, simple=True)
    trace.set_tracer_provider(tp)
    instrument(tp)
    report = _mcp_demo.ServerReport(args.report, exp, rec)

    from mcp.server.fastmcp import FastMCP

    server = FastMCP("orders", log_level="WARNING")

    @server.tool()
    def lookup_order(order: int) -> dict:
        """Looks an order up by its number."""
        return {"order": order, "status": "shipped"}

    @server.tool()
    def refund_order(order: int, amount_cents: int = 0) -> dict:
        """Refunds (part of) an order."""
        return {"order": order, "refunded_cents": amount_cents}

    try:
        asyncio.run(server.run_stdio_async())
    finally:
        tp.shutdown()
        report.write()
    return 0


async def agent(args, audit: _mcp_demo.Audit, report_path: str) -> list[str]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=_mcp_demo.server_argv(os.path.abspath(__file__), args, report_path),
        env=_mcp_demo.server_env(),
    )
    called = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as client:
            await client.initialize()
            tools = await client.list_tools()
            names = sorted(t.name for t in tools.tools)
            if names != sorted(_mcp_demo.TOOLS):
                raise SystemExit(f"mcp1_demo: server lists tools {names}")
            audit.permission("lookup_order")
            r = await client.call_tool("lookup_order", {"order": 17})
            if r.isError:
                raise SystemExit(f"mcp1_demo: lookup_order failed: {r}")
            called.append("lookup_order")
            if args.refund:
                r = await client.call_tool("refund_order", {"order": 17, "amount_cents": 500})
                if r.isError:
                    raise SystemExit(f"mcp1_demo: refund_order failed: {r}")
                called.append("refund_order")
    return called


def main() -> int:
    args = _mcp_demo.parse(__doc__, grpc=False)
    if args.serve:
        return serve(args)

    res = _otlp.resource(SERVICE)
    tp, exp, rec = _otlp.tracer_provider(args, res)
    trace.set_tracer_provider(tp)
    instrument(tp)
    audit = _mcp_demo.Audit(args, res, "mcp1-demo")
    tracer = tp.get_tracer("ringtrail.tests.mcp_demo", "0.1.0")

    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "server.json")
        t0 = time.monotonic_ns()

        def session() -> list[str]:
            audit.identity("sess-mcp1")
            audit.agent()
            called = asyncio.run(agent(args, audit, report_path))
            audit.result(t0)
            return called

        if args.no_root:
            called = session()
        else:
            with tracer.start_as_current_span(
                "invoke_agent order-assistant",
                attributes={
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "order-assistant",
                    "gen_ai.agent.id": "order-assistant",
                    "user.id": args.user,
                },
            ):
                called = session()
        tp.shutdown()
        audit.shutdown()
        report = _mcp_demo.read_report(report_path)

    return _mcp_demo.finish(
        "mcp1_demo",
        args,
        SERVICE,
        SERVER_SERVICE,
        called,
        exp,
        rec,
        audit,
        report,
        {
            "mcp_version": importlib.metadata.version("mcp"),
            "instrumentation_version": importlib.metadata.version("opentelemetry-instrumentation-mcp"),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
