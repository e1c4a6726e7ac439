"""Shared plumbing of the Python test clients: OTLP exporters (HTTP or gRPC,
optional gzip and bearer token) wrapped so that an export failure is seen,
providers, and the one JSON summary line each client prints.

Runs in both venvs (py-otel has the gRPC exporter, py-mcp1 does not: the
gRPC imports are lazy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)


def add_common_args(p: argparse.ArgumentParser, *, grpc: bool = True) -> None:
    p.add_argument(
        "--protocol",
        choices=["http", "grpc"] if grpc else ["http"],
        default="http",
        help="OTLP/HTTP (protobuf) or OTLP/gRPC",
    )
    p.add_argument(
        "--endpoint",
        default=os.environ.get("RINGTRAIL_OTLP_ENDPOINT"),
        help="base URL, e.g. http://127.0.0.1:4318 (http: /v1/logs and /v1/traces are appended) "
        "or http://127.0.0.1:4317 (grpc). Default $RINGTRAIL_OTLP_ENDPOINT",
    )
    p.add_argument("--gzip", action="store_true", help="gzip the export requests")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="exporter timeout in seconds (default 10)"
    )
    p.add_argument("--service", default=None, help="resource service.name")


def check_endpoint(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.endpoint:
        p.error("--endpoint (or RINGTRAIL_OTLP_ENDPOINT) is required")
    args.endpoint = args.endpoint.rstrip("/")


def token_headers() -> dict[str, str] | None:
    """`authorization: Bearer $RINGTRAIL_TOKEN` (lowercase: gRPC metadata
    keys must be), or None without a token."""
    tok = os.environ.get("RINGTRAIL_TOKEN")
    return {"authorization": f"Bearer {tok}"} if tok else None


class _Tally:
    """What an exporter wrapper saw: items exported, items failed, errors."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.calls = 0
        self.errors: list[str] = []

    def record(self, n: int, success: bool, error: str | None = None) -> None:
        with self.lock:
            self.calls += 1
            if success:
                self.ok += n
            else:
                self.failed += n
                if error:
                    self.errors.append(error)


class CheckedSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.tally = _Tally()

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        try:
            r = self.inner.export(spans)
        except Exception as e:  # noqa: BLE001 - report, never swallow
            self.tally.record(len(spans), False, repr(e))
            return SpanExportResult.FAILURE
        self.tally.record(len(spans), r == SpanExportResult.SUCCESS, None if r == SpanExportResult.SUCCESS else str(r))
        return r

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _compression(args: argparse.Namespace, grpc: bool):
    if not args.gzip:
        return None
    if grpc:
        from grpc import Compression

        return Compression.Gzip
    from opentelemetry.exporter.otlp.proto.http import Compression

    return Compression.Gzip


def span_exporter(args: argparse.Namespace) -> CheckedSpanExporter:
    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        inner = OTLPSpanExporter(
            endpoint=args.endpoint,
            insecure=args.endpoint.startswith("http://"),
            headers=token_headers(),
            timeout=args.timeout,
            compression=_compression(args, True),
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        inner = OTLPSpanExporter(
            endpoint=args.endpoint + "/v1/traces",
            headers=token_headers(),
            timeout=args.timeout,
            compression=_compression(args, False),
        )
    return CheckedSpanExporter(inner)


def log_exporter(args: argparse.Namespace):
    """A log exporter wrapped like CheckedSpanExporter (built lazily: the
    logs SDK module is only imported by clients that send logs)."""
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    class CheckedLogExporter(LogRecordExporter):
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.tally = _Tally()

        def export(self, batch: Sequence[Any]) -> Any:
            try:
                r = self.inner.export(batch)
            except Exception as e:  # noqa: BLE001
                self.tally.record(len(batch), False, repr(e))
                return LogRecordExportResult.FAILURE
            ok = r == LogRecordExportResult.SUCCESS
            self.tally.record(len(batch), ok, None if ok else str(r))
            return r

        def shutdown(self) -> None:
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self.inner.force_flush(timeout_millis)

    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        inner = OTLPLogExporter(
            endpoint=args.endpoint,
            insecure=args.endpoint.startswith("http://"),
            headers=token_headers(),
            timeout=args.timeout,
            compression=_compression(args, True),
        )
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        inner = OTLPLogExporter(
            endpoint=args.endpoint + "/v1/logs",
            headers=token_headers(),
            timeout=args.timeout,
            compression=_compression(args, False),
        )
    return CheckedLogExporter(inner)


def resource(service: str, **extra: Any) -> Resource:
    attrs = {
        "service.name": service,
        "service.version": "0.1.0",
        "deployment.environment.name": "test",
    }
    attrs.update(extra)
    return Resource.create(attrs)


class SpanRecorder(SpanProcessor):
    """Remembers every span that ended (name, kind, ids, scope), in order:
    what a client reports, and how many spans it must see exported."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[dict[str, Any]] = []

    def on_end(self, span: Any) -> None:
        sc = span.get_span_context()
        with self.lock:
            self.spans.append(
                {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace_id": format(sc.trace_id, "032x"),
                    "span_id": format(sc.span_id, "016x"),
                    "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
                    "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
                }
            )


def tracer_provider(
    args: argparse.Namespace, res: Resource, *, simple: bool = False
) -> tuple[TracerProvider, CheckedSpanExporter, SpanRecorder]:
    """A provider exporting to the endpoint (batched, or each span as it
    ends with `simple`), its checked exporter, and a recorder of the spans
    that ended (added first, so it sees every span the exporter gets)."""
    exp = span_exporter(args)
    rec = SpanRecorder()
    tp = TracerProvider(resource=res)
    tp.add_span_processor(rec)
    tp.add_span_processor(SimpleSpanProcessor(exp) if simple else BatchSpanProcessor(exp))
    return tp, exp, rec


def logger_provider(args: argparse.Namespace, res: Resource):
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    exp = log_exporter(args)
    lp = LoggerProvider(resource=res)
    lp.add_log_record_processor(BatchLogRecordProcessor(exp))
    return lp, exp


def hex_trace(ctx_or_span: Any) -> str:
    sc = ctx_or_span.get_span_context() if hasattr(ctx_or_span, "get_span_context") else ctx_or_span
    return format(sc.trace_id, "032x")


def hex_span(ctx_or_span: Any) -> str:
    sc = ctx_or_span.get_span_context() if hasattr(ctx_or_span, "get_span_context") else ctx_or_span
    return format(sc.span_id, "016x")


def finish(summary: dict[str, Any], expect: dict[str, tuple[Any, int]], also_ok: bool = True) -> int:
    """Checks each exporter's tally against the expected count, adds the
    tallies to `summary`, prints it as one JSON line on stdout, and returns
    the exit code: 0 when every item was exported, 1 otherwise (with the
    reason on stderr).

    `expect` maps a name (`spans`, `logs`) to (checked exporter, count).
    Call after the providers' shutdown (which flushes). `also_ok` False
    (a check of the caller's own failed) makes it fail too."""
    ok = also_ok
    exported: dict[str, int] = {}
    for name, (exp, want) in expect.items():
        t = exp.tally
        exported[name] = t.ok
        if t.failed or t.ok != want:
            ok = False
            print(
                f"{summary.get('client', 'client')}: {name}: exported {t.ok} of {want}, "
                f"failed {t.failed}; errors: {t.errors or 'none'}",
                file=sys.stderr,
            )
    summary["exported"] = exported
    summary["ok"] = ok
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0 if ok else 1
