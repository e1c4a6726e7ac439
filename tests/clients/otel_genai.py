#!/usr/bin/env python3
"""Sends agent traces shaped by the OpenTelemetry GenAI semantic conventions,
plus ringtrail's audit wire-contract points, over OTLP/HTTP or OTLP/gRPC.
Runs in the py-otel venv.

Per trace (--count traces, default 1), in this order:

  span  "invoke_agent order-assistant"  kind INTERNAL, root
        gen_ai.operation.name=invoke_agent, gen_ai.provider.name=openai,
        gen_ai.agent.name=order-assistant, gen_ai.agent.id=agent-7,
        gen_ai.agent.version=2.3.1, gen_ai.conversation.id=conv-{n},
        gen_ai.request.model=gpt-4o, user.id, session.id
    point identity  user_id, session_id, client_id=otel-genai, auth.method=oidc
    point agent     (--with-agent-point) agent.id, agent.name, gen_ai.request.model, gen_ai.provider.name
    span  "chat gpt-4o"  kind CLIENT
          gen_ai.operation.name=chat, gen_ai.provider.name=openai,
          gen_ai.request.model=gpt-4o, gen_ai.response.model=gpt-4o-2024-08-06,
          gen_ai.response.id, gen_ai.response.finish_reasons=["tool_calls"],
          gen_ai.usage.input_tokens=420, gen_ai.usage.output_tokens=96,
          server.address=api.openai.example, server.port=443
          event "gen_ai.client.inference.operation.details" (gen_ai.input.messages,
          gen_ai.output.messages: JSON strings)
    point permission  (not with --no-permission) decision (--decision, default allow),
          policy.id=orders-policy, policy.version=7, gen_ai.tool.name, gen_ai.tool.call.id
    span  "execute_tool {tool}"  kind INTERNAL
          gen_ai.operation.name=execute_tool, gen_ai.tool.name (--tool, default
          lookup_order), gen_ai.tool.call.id=call-{n}, gen_ai.tool.type=function,
          gen_ai.tool.description
          event "tool.progress" (step=fetch), event "tool.progress" (step=done)
      point tool  (--with-tool-point) gen_ai.tool.name, gen_ai.tool.call.id,
          mcp.method.name=tools/call, status=ok, duration_ns
    point result  outcome=success, tokens.total=516, cost.micro_usd=2150, duration_ns

A "point" is, with --audit logs (default), a log record of scope (logger)
"ringtrail::audit", severity INFO (a deny: WARN), body "audit {point}",
attribute audit.point={point} plus its fields, emitted in the current span
(so it carries its trace and span ids); with --audit events, a span event
named "ringtrail.audit" with the same attributes on the current span; with
--audit none, nothing. Resource service.name default "otel-genai-py".

stdout: one JSON line
  {"client":"otel_genai","protocol":"http","service":"otel-genai-py","audit":"logs",
   "trace_ids":["<32 hex>",...],
   "traces":[{"trace_id":"..","spans":{"invoke_agent":"<16 hex>","chat":"..","execute_tool":".."},
              "points":["identity","permission","result"],"tool":"lookup_order","call_id":"call-0"}],
   "exported":{"spans":3*count,"logs":points},"ok":true}
Exit 1 when not every span/record was exported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import _otlp
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, get_current_span


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _otlp.add_common_args(p)
    p.add_argument("--count", type=int, default=1, help="agent traces to send (default 1)")
    p.add_argument("--audit", choices=["logs", "events", "none"], default="logs")
    p.add_argument("--no-permission", action="store_true", help="omit the permission point (a gap)")
    p.add_argument("--decision", default="allow", help="permission decision (allow, deny, ...)")
    p.add_argument("--with-agent-point", action="store_true")
    p.add_argument("--with-tool-point", action="store_true")
    p.add_argument("--tool", default="lookup_order")
    p.add_argument("--user", default="user-42")
    args = p.parse_args()
    _otlp.check_endpoint(p, args)
    service = args.service or "otel-genai-py"

    res = _otlp.resource(service)
    tp, span_exp, _ = _otlp.tracer_provider(args, res)
    tracer = tp.get_tracer("ringtrail.tests.otel_genai", "0.1.0")
    lp = log_exp = audit_logger = None
    if args.audit == "logs":
        lp, log_exp = _otlp.logger_provider(args, res)
        audit_logger = lp.get_logger("ringtrail::audit")

    n_logs = 0

    def point(name: str, fields: dict, warn: bool = False) -> None:
        nonlocal n_logs
        attrs = {"audit.point": name, **fields}
        if args.audit == "logs":
            audit_logger.emit(
                timestamp=time.time_ns(),
                severity_text="WARN" if warn else "INFO",
                severity_number=SeverityNumber.WARN if warn else SeverityNumber.INFO,
                body=f"audit {name}",
                attributes=attrs,
            )
            n_logs += 1
        elif args.audit == "events":
            get_current_span().add_event("ringtrail.audit", attrs)

    traces = []
    for n in range(args.count):
        call_id = f"call-{n}"
        points: list[str] = []
        t0 = time.monotonic_ns()
        with tracer.start_as_current_span(
            "invoke_agent order-assistant",
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": "openai",
                "gen_ai.agent.name": "order-assistant",
                "gen_ai.agent.id": "agent-7",
                "gen_ai.agent.version": "2.3.1",
                "gen_ai.conversation.id": f"conv-{n}",
                "gen_ai.request.model": "gpt-4o",
                "user.id": args.user,
                "session.id": f"sess-{n}",
            },
        ) as root:
            point(
                "identity",
                {"user_id": args.user, "session_id": f"sess-{n}", "client_id": "otel-genai", "auth.method": "oidc"},
            )
            points.append("identity")
            if args.with_agent_point:
                point(
                    "agent",
                    {
                        "agent.id": "agent-7",
                        "agent.name": "order-assistant",
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.provider.name": "openai",
                    },
                )
                points.append("agent")
            with tracer.start_as_current_span(
                "chat gpt-4o",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.response.id": f"chatcmpl-{n}",
                    "gen_ai.response.finish_reasons": ["tool_calls"],
                    "gen_ai.usage.input_tokens": 420,
                    "gen_ai.usage.output_tokens": 96,
                    "server.address": "api.openai.example",
                    "server.port": 443,
                },
            ) as chat:
                chat.add_event(
                    "gen_ai.client.inference.operation.details",
                    {
                        "gen_ai.input.messages": json.dumps(
                            [{"role": "user", "parts": [{"type": "text", "content": "where is order 17?"}]}]
                        ),
                        "gen_ai.output.messages": json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "parts": [
                                        {"type": "tool_call", "id": call_id, "name": args.tool, "arguments": {"order": 17}}
                                    ],
                                    "finish_reason": "tool_call",
                                }
                            ]
                        ),
                    },
                )
            if not args.no_permission:
                deny = args.decision == "deny"
                point(
                    "permission",
                    {
                        "decision": args.decision,
                        "policy.id": "orders-policy",
                        "policy.version": "7",
                        "gen_ai.tool.name": args.tool,
                        "gen_ai.tool.call.id": call_id,
                    },
                    warn=deny,
                )
                points.append("permission")
            t_tool = time.monotonic_ns()
            with tracer.start_as_current_span(
                f"execute_tool {args.tool}",
                kind=SpanKind.INTERNAL,
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": args.tool,
                    "gen_ai.tool.call.id": call_id,
                    "gen_ai.tool.type": "function",
                    "gen_ai.tool.description": "Looks an order up by its number",
                },
            ) as tool:
                tool.add_event("tool.progress", {"step": "fetch"})
                tool.add_event("tool.progress", {"step": "done"})
                if args.with_tool_point:
                    point(
                        "tool",
                        {
                            "gen_ai.tool.name": args.tool,
                            "gen_ai.tool.call.id": call_id,
                            "mcp.method.name": "tools/call",
                            "status": "ok",
                            "duration_ns": time.monotonic_ns() - t_tool,
                        },
                    )
                    points.append("tool")
            point(
                "result",
                {
                    "outcome": "success",
                    "tokens.total": 516,
                    "cost.micro_usd": 2150,
                    "duration_ns": time.monotonic_ns() - t0,
                },
            )
            points.append("result")
        traces.append(
            {
                "trace_id": _otlp.hex_trace(root),
                "spans": {
                    "invoke_agent": _otlp.hex_span(root),
                    "chat": _otlp.hex_span(chat),
                    "execute_tool": _otlp.hex_span(tool),
                },
                "points": points,
                "tool": args.tool,
                "call_id": call_id,
            }
        )

    tp.shutdown()
    expect = {"spans": (span_exp, 3 * args.count)}
    if lp is not None:
        lp.shutdown()
        expect["logs"] = (log_exp, n_logs)
    summary = {
        "client": "otel_genai",
        "protocol": args.protocol,
        "service": service,
        "audit": args.audit,
        "trace_ids": [t["trace_id"] for t in traces],
        "traces": traces,
    }
    return _otlp.finish(summary, expect)


if __name__ == "__main__":
    sys.exit(main())
