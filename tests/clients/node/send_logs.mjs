#!/usr/bin/env node
// Sends N log records with the OpenTelemetry JS logs SDK and
// @opentelemetry/exporter-logs-otlp-http, which posts OTLP/HTTP **JSON**
// (Content-Type application/json) to ENDPOINT/v1/logs.
//
//   node tests/clients/node/send_logs.mjs --endpoint http://127.0.0.1:4318 [--count N]
//        [--gzip] [--service NAME] [--timeout SECONDS]
//   (endpoint default $RINGTRAIL_OTLP_ENDPOINT; $RINGTRAIL_TOKEN -> Authorization: Bearer)
//
// The packages come from the cache setup.sh fills:
// $RINGTRAIL_CLIENTS_DIR/node/node_modules (default <repo>/target/clients/...).
//
// Record i (0-based), scope "ringtrail.tests.node_logs" 0.1.0, resource
// service.name (default "otel-logs-node"):
//   body        "node log {i}"
//   severity    by i % 6: DEBUG(5) INFO(9) WARN(13) ERROR(17) FATAL(21) TRACE(1)
//   attributes  i (int) = i; ratio (double) = i + 0.5; ok (bool) = i % 2 == 0;
//               label = "item-{i}"; raw (bytes) = 00 01 72 74 ff;
//               tags = ["alpha","beta"]; codes = [i, i+1];
//               ctx (map) = {"k":"v","n":i,"nested":{"deep":true}};
//               user.id = "user-{i % 3}"; session.id = "sess-{i % 2}"
//   trace       even i carry trace context: span A (i < N/2) or span B, two
//               random ids (sampled); odd i carry none.
//
// stdout: one JSON line
//   {"client":"node_logs","protocol":"http-json","service":"otel-logs-node","count":N,
//    "with_trace":K,"trace_ids":[..],"span_ids":[..],"records":[{"i","severity","severity_number","trace_id"?,"span_id"?}..],
//    "exported":{"logs":N},"ok":true}
// `records` only when N <= 1000. Exit 1 when not every record was exported.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const cache = process.env.RINGTRAIL_CLIENTS_DIR || path.resolve(here, '../../../target/clients');
const require = createRequire(path.join(cache, 'node', 'node_modules', 'x.js'));

const api = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { ExportResultCode } = require('@opentelemetry/core');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');

function parseArgs(argv) {
  const a = { endpoint: process.env.RINGTRAIL_OTLP_ENDPOINT, count: 10, gzip: false, service: 'otel-logs-node', timeout: 10 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) usage(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--endpoint') a.endpoint = v();
    else if (k === '--count') a.count = Number.parseInt(v(), 10);
    else if (k === '--service') a.service = v();
    else if (k === '--timeout') a.timeout = Number.parseFloat(v());
    else if (k === '--gzip') a.gzip = true;
    else if (k === '-h' || k === '--help') usage();
    else usage(`unknown argument ${k}`);
  }
  if (!a.endpoint) usage('--endpoint (or RINGTRAIL_OTLP_ENDPOINT) is required');
  if (!Number.isInteger(a.count) || a.count < 0) usage('--count must be a non-negative integer');
  a.endpoint = a.endpoint.replace(/\/+$/, '');
  return a;
}

function usage(err) {
  const text = 'usage: send_logs.mjs --endpoint URL [--count N] [--gzip] [--service NAME] [--timeout S]';
  if (err) {
    console.error(`send_logs.mjs: ${err}\n${text}`);
    process.exit(2);
  }
  console.log(text);
  process.exit(0);
}

const args = parseArgs(process.argv.slice(2));

const headers = {};
if (process.env.RINGTRAIL_TOKEN) headers.Authorization = `Bearer ${process.env.RINGTRAIL_TOKEN}`;

const inner = new OTLPLogExporter({
  url: `${args.endpoint}/v1/logs`,
  headers,
  compression: args.gzip ? 'gzip' : 'none',
  timeoutMillis: Math.round(args.timeout * 1000),
});

// Counts what the exporter really got through: the processor drops a failed
// batch after logging it, so its flush alone cannot tell.
const tally = { ok: 0, failed: 0, errors: [] };
const checked = {
  export(records, done) {
    inner.export(records, (result) => {
      if (result.code === ExportResultCode.SUCCESS) tally.ok += records.length;
      else {
        tally.failed += records.length;
        tally.errors.push(String(result.error?.message ?? result.error ?? 'failed'));
      }
      done(result);
    });
  },
  shutdown: () => inner.shutdown(),
  forceFlush: () => inner.forceFlush(),
};

const provider = new LoggerProvider({
  resource: resourceFromAttributes({
    'service.name': args.service,
    'service.version': '0.1.0',
    'deployment.environment.name': 'test',
  }),
  processors: [new BatchLogRecordProcessor({ exporter: checked })],
});
const logger = provider.getLogger('ringtrail.tests.node_logs', '0.1.0');

const SEVERITIES = [
  ['DEBUG', SeverityNumber.DEBUG],
  ['INFO', SeverityNumber.INFO],
  ['WARN', SeverityNumber.WARN],
  ['ERROR', SeverityNumber.ERROR],
  ['FATAL', SeverityNumber.FATAL],
  ['TRACE', SeverityNumber.TRACE],
];

const span = () => ({
  traceId: randomBytes(16).toString('hex'),
  spanId: randomBytes(8).toString('hex'),
  traceFlags: api.TraceFlags.SAMPLED,
  isRemote: false,
});
const spanA = span();
const spanB = span();

const records = [];
const traceIds = [];
const spanIds = [];
let withTrace = 0;
for (let i = 0; i < args.count; i++) {
  const [text, number] = SEVERITIES[i % SEVERITIES.length];
  const rec = { i, severity: text, severity_number: number };
  let context = api.ROOT_CONTEXT;
  if (i % 2 === 0) {
    const sc = i < args.count / 2 ? spanA : spanB;
    context = api.trace.setSpanContext(api.ROOT_CONTEXT, sc);
    rec.trace_id = sc.traceId;
    rec.span_id = sc.spanId;
    withTrace++;
    if (!traceIds.includes(sc.traceId)) traceIds.push(sc.traceId);
    if (!spanIds.includes(sc.spanId)) spanIds.push(sc.spanId);
  }
  logger.emit({
    timestamp: Date.now(),
    severityNumber: number,
    severityText: text,
    body: `node log ${i}`,
    attributes: {
      i,
      ratio: i + 0.5,
      ok: i % 2 === 0,
      label: `item-${i}`,
      raw: new Uint8Array([0x00, 0x01, 0x72, 0x74, 0xff]),
      tags: ['alpha', 'beta'],
      codes: [i, i + 1],
      ctx: { k: 'v', n: i, nested: { deep: true } },
      'user.id': `user-${i % 3}`,
      'session.id': `sess-${i % 2}`,
    },
    context,
  });
  records.push(rec);
}

await provider.shutdown();

const ok = tally.failed === 0 && tally.ok === args.count;
if (!ok) {
  console.error(`send_logs.mjs: exported ${tally.ok} of ${args.count}, failed ${tally.failed}; errors: ${tally.errors.join('; ') || 'none'}`);
}
const summary = {
  client: 'node_logs',
  protocol: 'http-json',
  service: args.service,
  count: args.count,
  with_trace: withTrace,
  trace_ids: traceIds,
  span_ids: spanIds,
};
if (args.count <= 1000) summary.records = records;
summary.exported = { logs: tally.ok };
summary.ok = ok;
console.log(JSON.stringify(summary));
process.exit(ok ? 0 : 1);
