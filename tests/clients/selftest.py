#!/usr/bin/env python3
"""Checks the clients themselves, without ringtrail: starts capture.py with
a token on free loopback ports, runs every client against it, and checks
each one's exit code and JSON line against what the collector received
(counts, trace ids); then checks that a wrong token and a dead endpoint make
a client exit 1. Runs in the py-otel venv:

  $(tests/clients/setup.sh)/py-otel/bin/python tests/clients/selftest.py

Exits 0 when all hold, 1 (with the reasons on stderr) otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("RINGTRAIL_CLIENTS_DIR") or os.path.join(HERE, "..", "..", "target", "clients")
PY_OTEL = os.path.join(CACHE, "py-otel", "bin", "python")
PY_MCP1 = os.path.join(CACHE, "py-mcp1", "bin", "python")
TOKEN = "selftest-token"
failures: list[str] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def captured(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def records(reqs: list[dict]) -> tuple[list[dict], list[dict]]:
    logs, spans = [], []
    for r in reqs:
        b = r["body"]
        for rl in b.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                logs += sl.get("logRecords", [])
        for rs in b.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                spans += ss.get("spans", [])
    return logs, spans


def run(name: str, argv: list[str], token: str | None = TOKEN, expect_rc: int = 0, timeout: int = 120) -> dict | None:
    env = dict(os.environ, RINGTRAIL_CLIENTS_DIR=CACHE)
    env.pop("RINGTRAIL_TOKEN", None)
    if token:
        env["RINGTRAIL_TOKEN"] = token
    t = time.monotonic()
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t
    lines = [x for x in p.stdout.splitlines() if x.strip()]
    if p.returncode != expect_rc:
        failures.append(f"{name}: exit {p.returncode}, want {expect_rc}; stderr: {p.stderr[-2000:]}")
        return None
    if len(lines) != 1:
        failures.append(f"{name}: {len(lines)} stdout lines, want 1: {p.stdout[-500:]}")
        return None
    out = json.loads(lines[0])
    if out.get("ok") is not (expect_rc == 0):
        failures.append(f"{name}: ok={out.get('ok')}")
    print(f"selftest: {name}: exit {p.returncode} in {took:.1f}s", file=sys.stderr)
    return out


def check(name: str, cond: bool, what: str) -> None:
    if not cond:
        failures.append(f"{name}: {what}")


def main() -> int:
    http, grpc = free_port(), free_port()
    tmp = tempfile.mkdtemp(prefix="ringtrail-clients-")
    out = os.path.join(tmp, "cap.jsonl")
    cap = subprocess.Popen(
        [PY_OTEL, os.path.join(HERE, "capture.py"), "serve", "--http", f"127.0.0.1:{http}",
         "--grpc", f"127.0.0.1:{grpc}", "--out", out, "--token", TOKEN],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        if cap.stdout.readline().strip() != "ready":
            print("selftest: capture.py did not start", file=sys.stderr)
            return 1
        H, G = f"http://127.0.0.1:{http}", f"http://127.0.0.1:{grpc}"

        def since(n: int) -> list[dict]:
            return captured(out)[n:]

        # otel_logs over http, grpc+gzip
        for proto, ep, extra in (("http", H, []), ("grpc", G, ["--gzip"])):
            n0 = len(captured(out))
            s = run(f"otel_logs {proto}", [PY_OTEL, f"{HERE}/otel_logs.py", "--protocol", proto, "--endpoint", ep, "--count", "25", *extra])
            if s:
                logs, _ = records(since(n0))
                check("otel_logs", len(logs) == 25, f"captured {len(logs)} records")
                got = {lr.get("traceId") for lr in logs if lr.get("traceId")}
                check("otel_logs", got == set(s["trace_ids"]), f"trace ids {got} vs {s['trace_ids']}")

        # node
        n0 = len(captured(out))
        s = run("node send_logs", ["node", f"{HERE}/node/send_logs.mjs", "--endpoint", H, "--count", "12", "--gzip"])
        if s:
            reqs = since(n0)
            logs, _ = records(reqs)
            check("node", len(logs) == 12, f"captured {len(logs)} records")
            check("node", all(r["transport"] == "http-json" for r in reqs), "not OTLP/JSON")

        # otel_genai
        for proto, ep in (("http", H), ("grpc", G)):
            n0 = len(captured(out))
            s = run(f"otel_genai {proto}", [PY_OTEL, f"{HERE}/otel_genai.py", "--protocol", proto, "--endpoint", ep, "--count", "2"])
            if s:
                logs, spans = records(since(n0))
                check("otel_genai", len(spans) == 6 and len(logs) == 6, f"{len(spans)} spans, {len(logs)} logs")
                check("otel_genai", {sp["traceId"] for sp in spans} == set(s["trace_ids"]), "trace ids")

        # MCP demos
        for name, py, extra in (
            ("mcp2_demo", PY_OTEL, ["--mode", "auto"]),
            ("mcp2_demo", PY_OTEL, ["--mode", "legacy", "--protocol", "grpc"]),
            ("mcp1_demo", PY_MCP1, []),
        ):
            ep = G if "grpc" in extra else H
            n0 = len(captured(out))
            s = run(f"{name} {' '.join(extra)}", [py, f"{HERE}/{name}.py", "--endpoint", ep, "--refund", *extra])
            if s:
                logs, spans = records(since(n0))
                check(name, len(spans) == len(s["client_spans"]) + len(s["server_spans"]), f"captured {len(spans)} spans")
                check(name, len(logs) == len(s["points"]) == 3, f"captured {len(logs)} audit records")
                check(name, s["trace_id"] in {sp["traceId"] for sp in spans}, "root trace not captured")
                check(name, s["tools_called"] == ["lookup_order", "refund_order"], "tools")

        # failures are loud
        run("otel_logs wrong token", [PY_OTEL, f"{HERE}/otel_logs.py", "--endpoint", H, "--count", "2"], token="wrong", expect_rc=1)
        run("node wrong token", ["node", f"{HERE}/node/send_logs.mjs", "--endpoint", H, "--count", "2"], token="wrong", expect_rc=1)
        run("otel_genai grpc wrong token", [PY_OTEL, f"{HERE}/otel_genai.py", "--protocol", "grpc", "--endpoint", G], token="wrong", expect_rc=1)
        dead = f"http://127.0.0.1:{free_port()}"
        run("otel_logs dead endpoint", [PY_OTEL, f"{HERE}/otel_logs.py", "--endpoint", dead, "--count", "2", "--timeout", "2"], expect_rc=1)
        run("mcp1_demo dead endpoint", [PY_MCP1, f"{HERE}/mcp1_demo.py", "--endpoint", dead, "--timeout", "2"], expect_rc=1)
    finally:
        cap.terminate()
        cap.wait(10)

    if failures:
        for f in failures:
            print(f"selftest: FAIL {f}", file=sys.stderr)
        return 1
    print("selftest: all clients ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
