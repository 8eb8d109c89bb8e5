/**
 * The use case's retry and deadline policy with the real SMTP client against scripted peers:
 * transient failures retried with bounded backoff while the deadline allows; NEVER a retry once the server may
 * have the message (delivery unknown); permanent failures not retried.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { statusOf } from '../../functions/handlers/failure.ts';
import { type DeliverDeps, deadlineFrom, deliver, deliverBatch } from '../../functions/send/deliver.ts';
import { SendError } from '../../functions/send/errors.ts';
import {
  backoff,
  classify,
  DEFAULT_RETRY,
  type RetryPolicy,
  retryDelay,
} from '../../functions/send/retry.ts';
import { SmtpTransport } from '../../functions/send/transport.ts';
import type { DeliveryTrace, SmtpSettings } from '../../functions/send/types.ts';
import { SmtpError } from '../../functions/smtp/error.ts';
import { rejection } from '../support/fixtures.ts';
import { type ScriptedServer, startScriptedServer } from '../support/scripted-server.ts';

/** What the peer does on a connection, chosen by the connection's index. */
type Behaviour =
  | 'ok'
  /** 421 greeting (the client must give up on this connection). */
  | 'busy'
  /** Take the body, then close without a reply to the final dot. */
  | 'drop-after-data'
  /** Take the body, never answer it. */
  | 'silent-after-data'
  /** 552 to the final dot. */
  | 'reject-data';

interface Peer {
  port: number;
  /** Connections opened. */
  readonly connections: number;
  /** Messages whose end of data was answered 250. */
  readonly accepted: number;
  /** Ends of data received, whatever the answer. */
  readonly dataEnds: number;
  close(): Promise<void>;
}

/** The shared scripted server (clear text, no PIPELINING), driven per connection by `script`. */
async function startPeer(script: (connectionIndex: number) => Behaviour): Promise<Peer> {
  let accepted = 0;
  const srv: ScriptedServer = await startScriptedServer({
    extensions: ['8BITMIME', 'ENHANCEDSTATUSCODES'],
    extensionsBeforeTls: ['8BITMIME', 'ENHANCEDSTATUSCODES'],
    greeting: (i) => (script(i) === 'busy' ? '421 4.3.2 Service busy, try later\r\n' : undefined),
    onMessage: (_m, conn) => {
      switch (script(conn.index)) {
        case 'drop-after-data':
          return { close: true };
        case 'silent-after-data':
          return { silent: true };
        case 'reject-data':
          return { reply: '552 5.3.4 Message too big for system\r\n' };
        default:
          accepted++;
          return undefined;
      }
    },
  });
  return {
    port: srv.port,
    get connections() {
      return srv.connections.length;
    },
    get accepted() {
      return accepted;
    },
    get dataEnds() {
      return srv.messages.length;
    },
    close: () => srv.close(),
  };
}

const limits = { maxRecipients: 10, maxBatch: 10, maxBodyBytes: 100_000, maxAttachmentBytes: 100_000 };
const retry: RetryPolicy = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100, minAttemptMs: 200 };
const message = { to: 'a@example.com', subject: 'Hello', text: 'Body' };

let servers: Peer[] = [];
let transports: SmtpTransport[] = [];
afterEach(async () => {
  for (const t of transports) await t.close();
  for (const s of servers) await s.close();
  servers = [];
  transports = [];
});

async function setup(script: (i: number) => Behaviour, reuse = false) {
  const srv = await startPeer(script);
  servers.push(srv);
  const settings: SmtpSettings = {
    connection: { host: '127.0.0.1', port: srv.port, security: 'none', timeouts: { data: 5000 } },
    from: 'noreply@example.com',
    revision: 'fixed',
  };
  const transport = new SmtpTransport({ reuse, idleTimeoutMs: 5000 });
  transports.push(transport);
  const deps: DeliverDeps = {
    smtp: { get: async () => settings, refresh: async () => settings },
    policy: { limits },
    transport,
    retry,
  };
  return { srv, deps };
}

const failure = (p: Promise<unknown>) => rejection(p, SendError);

describe('deliver: retry policy', () => {
  it('a 421 greeting is transient: retried on a new connection, then delivered', async () => {
    const { srv, deps } = await setup((i) => (i === 0 ? 'busy' : 'ok'));
    const trace: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    const out = await deliver(message, deps, { deadline: Date.now() + 20_000, trace });
    expect(out).toMatchObject({ status: 'sent', accepted: ['a@example.com'] });
    expect(trace.attempts).toBe(2);
    expect(srv.connections).toBe(2);
    expect(srv.accepted).toBe(1);
  });

  it('transient failures are bounded by maxAttempts → smtp_unavailable', async () => {
    const { srv, deps } = await setup(() => 'busy');
    const trace: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000, trace }));
    expect(err.code).toBe('smtp_unavailable');
    expect(err.smtp).toMatchObject({ code: 421, phase: 'greeting' });
    expect(trace.attempts).toBe(3);
    expect(srv.connections).toBe(3);
  });

  it('failed attempts count their round trips in the trace (the invocation log reports them)', async () => {
    const busy = await setup(() => 'busy');
    const trace: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    await failure(deliver(message, busy.deps, { deadline: Date.now() + 20_000, trace }));
    expect(trace.roundTrips).toBe(6); // 3 attempts × (TCP connect + the 421 greeting)
    const dropped = await setup(() => 'drop-after-data');
    const t2: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    await failure(deliver(message, dropped.deps, { deadline: Date.now() + 20_000, trace: t2 }));
    expect(t2.roundTrips).toBeGreaterThanOrEqual(4); // TCP, greeting, EHLO, …, the body
  });

  it('no retry when the deadline does not leave room for another attempt', async () => {
    const { srv, deps } = await setup(() => 'busy');
    const trace: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 150, trace }));
    expect(err.code).toBe('smtp_unavailable');
    expect(trace.attempts).toBe(1);
    expect(srv.connections).toBe(1);
  });

  it('connection dropped after the body: delivery_unknown and NO retry', async () => {
    const { srv, deps } = await setup(() => 'drop-after-data');
    const trace: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000, trace }));
    expect(err.code).toBe('delivery_unknown');
    expect(statusOf(err)).toBe(502); // the HTTP adapter's status for the code
    expect(err.message).toMatch(/Do not retry blindly/);
    expect(trace.attempts).toBe(1);
    expect(srv.connections).toBe(1);
    expect(srv.dataEnds).toBe(1);
  });

  it('no reply to the final dot before the deadline: delivery_unknown, NO retry', async () => {
    const { srv, deps } = await setup(() => 'silent-after-data');
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 1500 }));
    expect(err.code).toBe('delivery_unknown');
    expect(srv.connections).toBe(1);
  });

  it('a permanent refusal is not retried → smtp_rejected with the code', async () => {
    const { srv, deps } = await setup(() => 'reject-data');
    const err = await failure(deliver(message, deps, { deadline: Date.now() + 20_000 }));
    expect(err.code).toBe('smtp_rejected');
    expect(err.smtp).toMatchObject({ code: 552, enhancedCode: '5.3.4', phase: 'data' });
    expect(srv.connections).toBe(1);
  });

  it('with reuse on, the second delivery goes over the same connection', async () => {
    const { srv, deps } = await setup(() => 'ok', true);
    const t1: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    const t2: DeliveryTrace = { attempts: 0, roundTrips: 0 };
    await deliver(message, deps, { deadline: Date.now() + 20_000, trace: t1 });
    await deliver(message, deps, { deadline: Date.now() + 20_000, trace: t2 });
    expect(srv.connections).toBe(1);
    expect([t1.reused, t2.reused]).toEqual([false, true]);
    expect(t2.roundTrips).toBeLessThan(t1.roundTrips);
  });
});

describe('deliverBatch', () => {
  it('a session-level transient failure retries the whole batch', async () => {
    const { srv, deps } = await setup((i) => (i === 0 ? 'busy' : 'ok'));
    const out = await deliverBatch({ messages: [message, { ...message, to: 'b@example.com' }] }, deps, {
      deadline: Date.now() + 20_000,
    });
    expect(out.results.map((r) => r.status)).toEqual(['accepted', 'accepted']);
    expect(srv.accepted).toBe(2);
    expect(srv.connections).toBe(2);
  });

  it('an unknown item is never resent (the rest may be retried on a new connection)', async () => {
    const { srv, deps } = await setup((i) => (i === 0 ? 'drop-after-data' : 'ok'));
    const out = await deliverBatch({ messages: [message, { ...message, to: 'b@example.com' }] }, deps, {
      deadline: Date.now() + 20_000,
    });
    expect(out.results[0]!.status).toBe('unknown');
    expect(out.results[0]).toMatchObject({ error: { code: 'delivery_unknown' } });
    // Whatever the client says about the second message (not started → retried, or unknown → left alone),
    // the server only ever accepted messages we report as accepted: message 0 was not sent again.
    const acceptedCount = out.results.filter((r) => r.status === 'accepted').length;
    expect(srv.accepted).toBe(acceptedCount);
    expect(srv.dataEnds).toBe(1 + acceptedCount);
  });
});

describe('backoff and deadline helpers', () => {
  it('backoff is exponential, capped and jittered into [d/2, d]', () => {
    const p = DEFAULT_RETRY;
    expect(backoff(1, p, () => 0)).toBe(p.baseDelayMs / 2);
    expect(backoff(1, p, () => 1)).toBe(p.baseDelayMs);
    expect(backoff(2, p, () => 1)).toBe(p.baseDelayMs * 2);
    expect(backoff(20, p, () => 1)).toBe(p.maxDelayMs);
    for (let i = 0; i < 100; i++) {
      const d = backoff(3, p);
      expect(d).toBeGreaterThanOrEqual(p.baseDelayMs * 2);
      expect(d).toBeLessThanOrEqual(p.baseDelayMs * 4);
    }
  });

  it('classify: one verdict per failure; a 535 re-reads the secret once, then fails', () => {
    const err = (init: ConstructorParameters<typeof SmtpError>[1]) => new SmtpError('x', init);
    expect(classify(err({ phase: 'quit', kind: 'network', delivery: 'accepted' }), false)).toBe('accepted');
    expect(classify(err({ phase: 'data', kind: 'timeout', delivery: 'unknown' }), false)).toBe('unknown');
    const auth = err({ phase: 'auth', kind: 'reply', code: 535 });
    expect(classify(auth, false)).toBe('refresh-secret');
    expect(classify(auth, true)).toBe('fail');
    expect(classify(err({ phase: 'greeting', kind: 'reply', code: 421 }), true)).toBe('retry');
    expect(classify(err({ phase: 'data', kind: 'reply', code: 552 }), false)).toBe('fail');
  });

  it('retryDelay: none once maxAttempts is reached or when the wait would end too close to the deadline', () => {
    const p: RetryPolicy = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, minAttemptMs: 500 };
    const one = () => 1;
    expect(retryDelay(1, 10_000, p, one, 0)).toBe(100);
    expect(retryDelay(2, 10_000, p, one, 0)).toBe(200);
    expect(retryDelay(3, 10_000, p, one, 0)).toBeUndefined();
    expect(retryDelay(1, 600, p, one, 0)).toBeUndefined(); // 100 + 500 is not before 600
    expect(retryDelay(1, 601, p, one, 0)).toBe(100);
  });

  it('deadlineFrom keeps a 1.5 s safety margin and never goes before now', () => {
    expect(deadlineFrom(10_000, 1_000)).toBe(1_000 + 8_500);
    expect(deadlineFrom(500, 1_000)).toBe(1_000);
  });
});
