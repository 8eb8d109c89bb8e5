/**
 * The hostile edge corpus (test/support/hostile-edge.ts, issue #10) against `handler()` and against the esbuild
 * bundle, with a real smtp-server and the local Secrets Manager endpoint: every case answers its status, with a
 * body under 64 KB (redirects aside), CORS only for the allowed origin, nothing delivered unless expected, and no
 * secret, ARN or local part in any answer or log line.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../functions/handlers/index.ts';
import { createLambdaContext } from '../../local/lambda-context.ts';
import { buildHandler, ROOT } from '../../scripts/build.ts';
import {
  BAD_CONFIG,
  EDGE_CONFIG,
  type EdgeSetup,
  HOSTILE_CASES,
  type HostileCase,
  MAX_RESPONSE_BYTES,
  MISSING_SECRET_ARN,
} from '../support/hostile-edge.ts';
import { type Harness, SECRET_ID, startHarness } from './harness.ts';

type Invoke = (event: unknown) => Promise<unknown>;
type Result = { statusCode: number; headers: Record<string, string>; body: string };

const outdir = `dist/test-bundle-edge-${process.pid}`;
const SETUPS: Record<EdgeSetup, { config: unknown; secretId: string }> = {
  default: { config: EDGE_CONFIG, secretId: SECRET_ID },
  'missing-secret': { config: EDGE_CONFIG, secretId: MISSING_SECRET_ARN },
  'bad-config': { config: BAD_CONFIG, secretId: SECRET_ID },
};

let h: Harness;
const handlers: Record<'handler()' | 'bundle', Partial<Record<EdgeSetup, Invoke>>> = {
  'handler()': {},
  bundle: {},
};
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  h = await startHarness({ config: EDGE_CONFIG, env: { POWERTOOLS_LOG_LEVEL: 'INFO' } });
  const { outfile } = await buildHandler({ outdir });
  const saved = { ...process.env };
  for (const [setup, { config, secretId }] of Object.entries(SETUPS) as Array<
    [EdgeSetup, (typeof SETUPS)[EdgeSetup]]
  >) {
    const env = { SMTP_SECRET_ID: secretId, ENDPOINT_CONFIG: JSON.stringify(config) };
    const fn = setup === 'default' ? h.handler : createHandler({ env });
    if (fn !== h.handler) closers.push(() => fn.close());
    handlers['handler()'][setup] = (e) => fn(e, createLambdaContext());
    // Each import with its own query is a fresh module instance: a cold start with this environment.
    Object.assign(process.env, env);
    const mod = (await import(`${pathToFileURL(outfile).href}?setup=${setup}`)) as {
      handler: ((e: unknown, c: unknown) => Promise<unknown>) & { close(): Promise<void> };
    };
    closers.push(() => mod.handler.close());
    handlers.bundle[setup] = (e) => mod.handler(e, createLambdaContext());
  }
  process.env.SMTP_SECRET_ID = saved.SMTP_SECRET_ID;
  process.env.ENDPOINT_CONFIG = saved.ENDPOINT_CONFIG;
  if (saved.SMTP_SECRET_ID === undefined) delete process.env.SMTP_SECRET_ID;
  if (saved.ENDPOINT_CONFIG === undefined) delete process.env.ENDPOINT_CONFIG;
}, 120_000);

afterAll(async () => {
  for (const c of closers) await c();
  await h?.close();
  rmSync(join(ROOT, outdir), { recursive: true, force: true });
});

async function check(invoke: Invoke, c: HostileCase): Promise<void> {
  const sentBefore = h.srv.mailFrom.length;
  const logsBefore = h.rawLog.length;
  const res = (await invoke(c.event())) as Result;
  const what = `${c.id}: ${String(res.body).slice(0, 300)}`;
  expect(res.statusCode, what).toBe(c.expect.status);
  const bytes = Buffer.byteLength(String(res.body ?? ''), 'utf8');
  if (res.statusCode !== 303) expect(bytes, `${c.id}: response size`).toBeLessThan(MAX_RESPONSE_BYTES);
  const isJson = /json/.test(res.headers['content-type'] ?? '');
  const problem = isJson && res.body ? (JSON.parse(res.body) as Record<string, unknown>) : undefined;
  if (c.expect.code) expect(problem?.code, what).toBe(c.expect.code);
  if (c.expect.field) {
    const fields = ((problem?.errors as Array<{ field: string }> | undefined) ?? []).map((e) => e.field);
    expect(fields, what).toContain(c.expect.field);
  }
  if (c.expect.location !== undefined) expect(res.headers.location ?? null, what).toBe(c.expect.location);
  if (c.expect.acao !== undefined)
    expect(res.headers['access-control-allow-origin'] ?? null, what).toBe(c.expect.acao);
  if (c.event().rawPath.startsWith('/forms/')) expect(res.headers.vary, what).toMatch(/\bOrigin\b/);
  expect(res.headers['access-control-allow-origin'], what).not.toBe('null');
  for (const value of Object.values(res.headers)) expect(String(value), what).not.toMatch(/[\r\n\0]/);
  expect(h.srv.mailFrom.length - sentBefore, `${c.id}: messages sent`).toBe(c.expect.sent ? 1 : 0);
  const answer = `${res.body}\n${JSON.stringify(res.headers)}`;
  const logged = h.rawLog.slice(logsBefore).join('\n');
  for (const s of [...(c.expect.hidden ?? []), ...(c.expect.unlogged ?? [])])
    expect(answer.includes(s), `${c.id}: the answer contains ${JSON.stringify(s)}`).toBe(false);
  for (const s of c.expect.logged ?? [])
    expect(logged.includes(s), `${c.id}: no log line contains ${JSON.stringify(s)}`).toBe(true);
  for (const s of c.expect.unlogged ?? [])
    expect(logged.includes(s), `${c.id}: a log line contains ${JSON.stringify(s)}`).toBe(false);
}

for (const kind of ['handler()', 'bundle'] as const) {
  describe(`hostile edge corpus against ${kind}`, () => {
    for (const c of HOSTILE_CASES) {
      it(`row ${c.row}: ${c.id} → ${c.expect.status}`, async () => {
        await check(handlers[kind][c.setup ?? 'default']!, c);
      });
    }
  });
}
