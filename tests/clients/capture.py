#!/usr/bin/env python3
"""A tiny OTLP capture collector, for looking at what the real clients emit
(how tests/clients/OBSERVED.md was made). Runs in the py-otel venv.

  capture.py serve --http 127.0.0.1:4318 [--grpc 127.0.0.1:4317] --out FILE [--token T]
      OTLP/HTTP (POST /v1/logs, /v1/traces; protobuf or JSON; gzip) and
      OTLP/gRPC; each export request is appended to FILE as one JSON line
      {"signal":"logs"|"traces","transport":"http-proto"|"http-json"|"grpc",
       "gzip":bool (grpc: always false, not visible),"auth":HEADER|null,"body":{...}} with ids in lowercase hex,
      and for OTLP/JSON "raw_json": the request exactly as sent.
      With --token, a request without `Bearer T` gets 401 / UNAUTHENTICATED.
      Prints "ready" on stdout once listening; stops on SIGTERM/SIGINT.
  capture.py summarize FILE
      One Markdown digest: per resource/scope, each span (name, kind,
      attributes, events) and each log record (severity, body, attributes).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

LOCK = threading.Lock()
HEX_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def hexify(o):
    if isinstance(o, dict):
        out = {}
        for k, v in o.items():
            if k in HEX_KEYS and isinstance(v, str) and v:
                try:
                    v = base64.b64decode(v).hex()
                except Exception:  # noqa: BLE001
                    pass
            out[k] = hexify(v)
        return out
    if isinstance(o, list):
        return [hexify(x) for x in o]
    return o


def unhex(o):
    if isinstance(o, dict):
        return {
            k: (base64.b64encode(bytes.fromhex(v)).decode() if k in HEX_KEYS and isinstance(v, str) and v else unhex(v))
            for k, v in o.items()
        }
    if isinstance(o, list):
        return [unhex(x) for x in o]
    return o


def record(out: str, signal_: str, transport: str, gz: bool, auth, msg, raw_json=None) -> None:
    body = hexify(json_format.MessageToDict(msg))
    rec = {"signal": signal_, "transport": transport, "gzip": gz, "auth": auth, "body": body}
    if raw_json is not None:
        rec["raw_json"] = raw_json
    line = json.dumps(rec, separators=(",", ":"))
    with LOCK, open(out, "a") as f:
        f.write(line + "\n")


def serve(args) -> int:
    kinds = {
        "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
        "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    }
    want = f"Bearer {args.token}" if args.token else None

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    n = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if n == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(n)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_POST(self):
            k = kinds.get(self.path.split("?")[0])
            if not k:
                self.send_error(404)
                return
            auth = self.headers.get("Authorization")
            if want and auth != want:
                self.send_response(401)
                self.end_headers()
                return
            raw = self.body()
            gz = self.headers.get("Content-Encoding", "") == "gzip"
            if gz:
                raw = gzip.decompress(raw)
            ctype = self.headers.get("Content-Type", "")
            msg = k[1]()
            if "json" in ctype:
                # OTLP/JSON writes ids as hex, proto3 JSON as base64
                raw_json = json.loads(raw)
                json_format.ParseDict(unhex(raw_json), msg)
                transport = "http-json"
            else:
                msg.ParseFromString(raw)
                transport = "http-proto"
                raw_json = None
            record(args.out, k[0], transport, gz, auth, msg, raw_json)
            resp = k[2]()
            if "json" in ctype:
                data, rtype = b"{}", "application/json"
            else:
                data, rtype = resp.SerializeToString(), "application/x-protobuf"
            self.send_response(200)
            self.send_header("Content-Type", rtype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    host, port = args.http.rsplit(":", 1)
    httpd = ThreadingHTTPServer((host, int(port)), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    grpc_server = None
    if args.grpc:
        import grpc

        def check(context):
            md = dict(context.invocation_metadata())
            auth = md.get("authorization")
            if want and auth != want:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
            gz = md.get("grpc-encoding") == "gzip"
            return auth, gz

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request, context):
                auth, gz = check(context)
                record(args.out, "logs", "grpc", gz, auth, request)
                return logs_service_pb2.ExportLogsServiceResponse()

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                auth, gz = check(context)
                record(args.out, "traces", "grpc", gz, auth, request)
                return trace_service_pb2.ExportTraceServiceResponse()

        grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), grpc_server)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), grpc_server)
        grpc_server.add_insecure_port(args.grpc)
        grpc_server.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    httpd.shutdown()
    if grpc_server:
        grpc_server.stop(0)
    return 0


def anyvalue(v):
    if not v:
        return None
    (k, x), = v.items()
    if k == "kvlistValue":
        return {e["key"]: anyvalue(e.get("value", {})) for e in x.get("values", [])}
    if k == "arrayValue":
        return [anyvalue(e) for e in x.get("values", [])]
    if k == "intValue":
        return int(x)
    if k == "bytesValue":
        return "bytes:" + base64.b64decode(x).hex()
    return x


def attrs(lst):
    return {a["key"]: anyvalue(a.get("value", {})) for a in lst or []}


def summarize(args) -> int:
    for line in open(args.file):
        r = json.loads(line)
        body = r["body"]
        print(f"## {r['signal']} via {r['transport']} gzip={r['gzip']} auth={r['auth']}")
        res_key = "resourceLogs" if r["signal"] == "logs" else "resourceSpans"
        for rs in body.get(res_key, []):
            print(f"resource: {json.dumps(attrs(rs.get('resource', {}).get('attributes')))}")
            scope_key = "scopeLogs" if r["signal"] == "logs" else "scopeSpans"
            for ss in rs.get(scope_key, []):
                sc = ss.get("scope", {})
                print(f"  scope: {sc.get('name')} {sc.get('version', '')} {json.dumps(attrs(sc.get('attributes')))}")
                for s in ss.get("spans", []):
                    print(
                        f"    span {s['name']!r} kind={s.get('kind')} trace={s.get('traceId')} "
                        f"span={s.get('spanId')} parent={s.get('parentSpanId')} status={s.get('status')}"
                    )
                    print(f"      attrs: {json.dumps(attrs(s.get('attributes')))}")
                    for e in s.get("events", []):
                        print(f"      event {e['name']!r}: {json.dumps(attrs(e.get('attributes')))}")
                for lr in ss.get("logRecords", []):
                    print(
                        f"    log sev={lr.get('severityNumber')}/{lr.get('severityText')} "
                        f"body={json.dumps(anyvalue(lr.get('body', {})))} trace={lr.get('traceId')} "
                        f"span={lr.get('spanId')} event_name={lr.get('eventName')}"
                    )
                    print(f"      attrs: {json.dumps(attrs(lr.get('attributes')))}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--http", required=True)
    s.add_argument("--grpc")
    s.add_argument("--out", required=True)
    s.add_argument("--token")
    m = sub.add_parser("summarize")
    m.add_argument("file")
    args = p.parse_args()
    return serve(args) if args.cmd == "serve" else summarize(args)


if __name__ == "__main__":
    sys.exit(main())
