#!/usr/bin/env python3
"""Sends N log records with the OpenTelemetry Python logs SDK over OTLP/HTTP
(protobuf) or OTLP/gRPC. Runs in the py-otel venv.

Record i (0-based) is deterministic so a test can compare it with its row:

  body        "otel log {i}"
  severity    cycles DEBUG(5), INFO(9), WARN(13), ERROR(17), FATAL(21), TRACE(1)
              (severity_text DEBUG/INFO/WARN/ERROR/FATAL/TRACE), by i % 6
  attributes  i (int) = i; ratio (double) = i + 0.5; ok (bool) = i % 2 == 0;
              label (string) = "item-{i}"; raw (bytes) = b"\\x00\\x01rt\\xff";
              tags (string array) = ["alpha", "beta"]; codes (int array) = [i, i+1];
              ctx (map) = {"k": "v", "n": i, "nested": {"deep": true}};
              user.id = "user-{i % 3}"; session.id = "sess-{i % 2}"
  trace       records with i % 2 == 0 are emitted inside span A (i < N/2) or
              span B (i >= N/2) -- two local spans, not exported -- and carry
              their trace and span ids; odd records carry none.

Scope (logger) name "ringtrail.tests.otel_logs". Resource service.name
(default "otel-logs-py").

stdout: one JSON line
  {"client":"otel_logs","protocol":"http","service":"otel-logs-py","count":N,
   "with_trace":K,"trace_ids":["<32 hex>",...],"span_ids":["<16 hex>",...],
   "records":[{"i":0,"severity":"DEBUG","severity_number":5,"trace_id":"..","span_id":".."},...],
   "exported":{"logs":N},"ok":true}
`records` only when N <= 1000. Exit 1 when not every record was exported.
"""

from __future__ import annotations

import argparse
import sys
import time

import _otlp
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import set_span_in_context

SEVERITIES = [
    ("DEBUG", SeverityNumber.DEBUG),
    ("INFO", SeverityNumber.INFO),
    ("WARN", SeverityNumber.WARN),
    ("ERROR", SeverityNumber.ERROR),
    ("FATAL", SeverityNumber.FATAL),
    ("TRACE", SeverityNumber.TRACE),
]


def attributes(i: int) -> dict:
    return {
        "i": i,
        "ratio": i + 0.5,
        "ok": i % 2 == 0,
        "label": f"item-{i}",
        "raw": b"\x00\x01rt\xff",
        "tags": ["alpha", "beta"],
        "codes": [i, i + 1],
        "ctx": {"k": "v", "n": i, "nested": {"deep": True}},
        "user.id": f"user-{i % 3}",
        "session.id": f"sess-{i % 2}",
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _otlp.add_common_args(p)
    p.add_argument("--count", type=int, default=10)
    args = p.parse_args()
    _otlp.check_endpoint(p, args)
    service = args.service or "otel-logs-py"

    lp, exp = _otlp.logger_provider(args, _otlp.resource(service))
    logger = lp.get_logger("ringtrail.tests.otel_logs", "0.1.0")

    # Local spans only give the records real trace context; they are not exported.
    tracer = TracerProvider().get_tracer("ringtrail.tests.otel_logs")
    span_a = tracer.start_span("otel-logs A")
    span_b = tracer.start_span("otel-logs B")

    records = []
    trace_ids: list[str] = []
    span_ids: list[str] = []
    with_trace = 0
    for i in range(args.count):
        text, number = SEVERITIES[i % len(SEVERITIES)]
        ctx = None
        rec = {"i": i, "severity": text, "severity_number": int(number.value)}
        if i % 2 == 0:
            span = span_a if i < args.count / 2 else span_b
            ctx = set_span_in_context(span)
            t, s = _otlp.hex_trace(span), _otlp.hex_span(span)
            rec.update(trace_id=t, span_id=s)
            with_trace += 1
            if t not in trace_ids:
                trace_ids.append(t)
            if s not in span_ids:
                span_ids.append(s)
        logger.emit(
            timestamp=time.time_ns(),
            context=ctx,
            severity_text=text,
            severity_number=number,
            body=f"otel log {i}",
            attributes=attributes(i),
        )
        records.append(rec)
    span_a.end()
    span_b.end()
    lp.shutdown()

    summary = {
        "client": "otel_logs",
        "protocol": args.protocol,
        "service": service,
        "count": args.count,
        "with_trace": with_trace,
        "trace_ids": trace_ids,
        "span_ids": span_ids,
    }
    if args.count <= 1000:
        summary["records"] = records
    return _otlp.finish(summary, {"logs": (exp, args.count)})


if __name__ == "__main__":
    sys.exit(main())
