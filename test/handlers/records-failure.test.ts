/**
 * When the send records table fails (a proxy in front of dynalite answers one chosen call with a
 * ValidationException): before the marker nothing is sent (`503 idempotency_unavailable`); after the message was
 * handed over the answer stands (`200`), the failure is logged, and a repeat never sends it again.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HttpResult } from '../../functions/handlers/http.ts';
import { DynamoSendRecords } from '../../functions/store/send-records.ts';
import { createLambdaContext } from '../../local/lambda-context.ts';
import { type DynamoProxy, startDynamoProxy } from '../support/dynamo-proxy.ts';
import { type CountingClient, type DynamoEndpoint, startDynalite } from '../support/dynamodb.ts';
import { sendEvent } from './events.ts';
import { type Harness, startHarness } from './harness.ts';

// biome-ignore lint/suspicious/noExplicitAny: reading response JSON in assertions
const bodyOf = (r: HttpResult) => JSON.parse(String(r.body)) as Record<string, any>;
const message = (n: string) => ({ to: 'alice@example.com', subject: `Records ${n}`, text: n });
/** The invocation budget here: the claim's owner deadline ends 1.5 s before it. */
const BUDGET_MS = 4000;

let ddb: DynamoEndpoint;
let proxy: DynamoProxy;
let client: CountingClient;
let h: Harness;

beforeAll(async () => {
  ddb = await startDynalite();
  await ddb.createTable('records-failure');
  proxy = await startDynamoProxy(ddb.url);
  client = ddb.client();
  const viaProxy = new DynamoSendRecords({
    tableName: 'records-failure',
    clientConfig: {
      endpoint: proxy.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    },
  });
  h = await startHarness({ config: { send: { allowedRecipients: ['*@example.com'] } }, records: viaProxy });
}, 60_000);
afterAll(async () => {
  await h?.close();
  client?.destroy();
  await proxy?.close();
  await ddb?.close();
});
beforeEach(() => {
  h.srv.messages.length = 0;
});

const post = async (body: unknown, key?: string) =>
  (await h.handler(
    sendEvent(body, key ? { 'idempotency-key': key } : {}),
    createLambdaContext(BUDGET_MS),
  )) as HttpResult;

describe('the send records table fails', () => {
  it('a marker that fails once is written on the next attempt (nothing had been sent): one mail', async () => {
    const failed = proxy.fail((r) => r.operation === 'UpdateItem' && r.body.includes('INPROGRESS'));
    const res = await post(message('marker-once'), randomUUID());
    await failed;
    expect(res.statusCode).toBe(200);
    expect(h.srv.messages).toHaveLength(1);
  });

  it('the claim cannot be written → 503 idempotency_unavailable with Retry-After; nothing is sent', async () => {
    const failed = proxy.fail((r) => r.operation === 'PutItem');
    const res = await post(message('claim'), randomUUID());
    await failed;
    expect(res.statusCode).toBe(503);
    expect(bodyOf(res).code).toBe('idempotency_unavailable');
    expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(h.srv.messages).toHaveLength(0);
  });

  it('the marker cannot be written (on every attempt) → 503, and the message never reaches the server', async () => {
    const marker = (r: { operation: string; body: string }) =>
      r.operation === 'UpdateItem' && r.body.includes('INPROGRESS');
    const failed = proxy.fail(marker, 3);
    const res = await post(message('marker'), randomUUID());
    await failed;
    expect(res.statusCode).toBe(503);
    expect(bodyOf(res).code).toBe('idempotency_unavailable');
    expect(h.srv.messages).toHaveLength(0);
  });

  it('a keyless status record cannot be written (on every attempt) → 503; nothing is sent', async () => {
    const failed = proxy.fail((r) => r.operation === 'PutItem', 3);
    const res = await post(message('keyless'));
    await failed;
    expect(res.statusCode).toBe(503);
    expect(h.srv.messages).toHaveLength(0);
  });

  it('the completion cannot be written after the 250 → 200 (it was sent), logged; a repeat never re-sends', async () => {
    const key = randomUUID();
    const started = Date.now();
    const failed = proxy.fail((r) => r.operation === 'UpdateItem' && r.body.includes('"COMPLETED"'));
    const res = await post(message('completion'), key);
    await failed;
    expect(res.statusCode).toBe(200);
    const { messageId } = bodyOf(res);
    const line = h.logs.findLast((l) => l.entryPoint === 'http_send');
    expect(line).toMatchObject({ outcome: 'sent', recordFailed: true, level: 'WARN' });
    // The record is marked and unfinished: 409 until the first attempt's deadline, then delivery_unknown.
    const early = await post(message('completion'), key);
    expect(early.statusCode).toBe(409);
    await new Promise((r) => setTimeout(r, Math.max(0, started + BUDGET_MS - 1500 + 300 - Date.now())));
    const later = await post(message('completion'), key);
    expect(later.statusCode).toBe(502);
    expect(bodyOf(later).code).toBe('delivery_unknown');
    expect(bodyOf(later).detail).toContain(messageId);
    expect(h.srv.messages).toHaveLength(1);
  });
});
