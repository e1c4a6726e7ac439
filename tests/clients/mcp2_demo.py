#!/usr/bin/env python3
"""An MCP agent and server on the MCP Python SDK 2.x, whose own OpenTelemetry
spans (tracer "mcp-python-sdk") go to the endpoint. Runs in the py-otel venv.

The client spawns this script with --serve as a stdio MCP server (MCPServer
"orders", tools lookup_order and refund_order), connects (--mode auto probes
`server/discover`, legacy does the `initialize` handshake), lists the tools,
calls lookup_order {"order": 17}, and with --refund refund_order {"order":
17, "amount_cents": 500}. Both processes export their spans (client: service
"mcp2-agent", server: "mcp2-orders-server"); the SDK carries the trace
context in `_meta`, so the server spans join the client's trace. Unless
--no-root, the whole session runs in a root span "invoke_agent
order-assistant" (scope "ringtrail.tests.mcp_demo"), so it is one trace.

The agent emits the --points (default identity,permission,result) as log
records of scope "ringtrail::audit" (see otel_genai.py): identity first,
permission (decision allow, policy.id orders-policy, gen_ai.tool.name
lookup_order) right before calling lookup_order, result last. No permission
covers refund_order: with --refund the trace has a missing_permission gap.

stdout: one JSON line
  {"client":"mcp2_demo","protocol":"http","service":"mcp2-agent","server_service":"mcp2-orders-server",
   "mcp_version":"2.3.0","mode":"auto","tools_called":["lookup_order"],
   "trace_id":"<32 hex: the root span's; null with --no-root>",
   "trace_ids":["<32 hex>",..every trace id among both processes' spans],
   "points":[{"point":"identity","trace_id":".."},{"point":"permission","trace_id":"..","tool":"lookup_order"},..],
   "client_spans":[{"name","kind","trace_id","span_id","parent_span_id","scope"},..],
   "server_spans":[..same..],"server_exported":N,
   "exported":{"spans":N,"logs":N},"ok":true}
Exit 1 when a span or record of either process was not exported, or a tool
call failed.
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

SERVICE = "mcp2-agent"
SERVER_SERVICE = "mcp2-orders-server"


def serve(args) -> int:
    res = _otlp.resource(SERVER_SERVICE)
    tp, exp, rec = _otlp.tracer_provider(args, res, simple=True)
    trace.set_tracer_provider(tp)
    report = _mcp_demo.ServerReport(args.report, exp, rec)

    from mcp.server.mcpserver import MCPServer

    server = MCPServer("orders", version="1.0.0")

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
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=_mcp_demo.server_argv(os.path.abspath(__file__), args, report_path),
        env=_mcp_demo.server_env(),
    )
    called = []
    async with Client(params, mode=args.mode) as client:
        tools = await client.list_tools()
        names = sorted(t.name for t in tools.tools)
        if names != sorted(_mcp_demo.TOOLS):
            raise SystemExit(f"mcp2_demo: server lists tools {names}")
        audit.permission("lookup_order")
        r = await client.call_tool("lookup_order", {"order": 17})
        if r.is_error:
            raise SystemExit(f"mcp2_demo: lookup_order failed: {r}")
        called.append("lookup_order")
        if args.refund:
            r = await client.call_tool("refund_order", {"order": 17, "amount_cents": 500})
            if r.is_error:
                raise SystemExit(f"mcp2_demo: refund_order failed: {r}")
            called.append("refund_order")
    return called


def main() -> int:
    args = _mcp_demo.parse(__doc__, grpc=True, modes=["auto", "legacy"])
    if args.serve:
        return serve(args)

    res = _otlp.resource(SERVICE)
    tp, exp, rec = _otlp.tracer_provider(args, res)
    trace.set_tracer_provider(tp)
    audit = _mcp_demo.Audit(args, res, "mcp2-demo")
    tracer = tp.get_tracer("ringtrail.tests.mcp_demo", "0.1.0")

    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "server.json")
        t0 = time.monotonic_ns()

        def session() -> list[str]:
            audit.identity("sess-mcp2")
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
        "mcp2_demo",
        args,
        SERVICE,
        SERVER_SERVICE,
        called,
        exp,
        rec,
        audit,
        report,
        {"mcp_version": importlib.metadata.version("mcp"), "mode": args.mode},
    )


if __name__ == "__main__":
    sys.exit(main())
