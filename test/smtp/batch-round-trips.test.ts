/**
 * Round trips of a batch over ONE session against Exim (CHUNKING + PIPELINING), counted twice: by the client
 * (`roundTrips`) and, independently, on the wire by the latency proxy in front of Exim (bench/proxy.ts, 0 ms: the
 * TCP handshake + every run of server bytes the client waited for). The whole batch of transactions is written
 * without waiting between them (RFC 2920 / RFC 3030): a cold batch costs the set-up + ONE round trip, a warm batch
 * ONE, whatever the number of messages — up to `MAX_GROUP_OCTETS` per write, one more round trip per further
 * write. Counts only, never wall-clock.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LatencyProxy, startLatencyProxy } from '../../bench/proxy.ts';
import { compose } from '../../functions/mime/index.ts';
import {
  type ConnectionOptions,
  type OutgoingMessage,
  SmtpClient,
  sendBatch,
} from '../../functions/smtp/index.ts';
import { MAX_GROUP_OCTETS } from '../../functions/smtp/session.ts';
import { type ChunkingServer, startChunkingServer } from '../support/chunking-server.ts';

let server: ChunkingServer;
let proxy: LatencyProxy;

beforeAll(async () => {
  server = await startChunkingServer();
  proxy = await startLatencyProxy(server.port, 0);
});

afterAll(async () => {
  await proxy?.close();
  await server?.close();
});

beforeEach(() => proxy.reset());

const options = (): ConnectionOptions => ({
  host: '127.0.0.1',
  port: proxy.port,
  security: 'starttls',
  servername: 'localhost',
  ca: server.ca,
  auth: { username: server.username, password: server.password, mechanism: 'PLAIN' },
  transcript: true,
});

function batch(n: number, tag: string, text = 'hello'): OutgoingMessage[] {
  return Array.from({ length: n }, (_, i) => {
    const c = compose({ from: 'rt@example.org', to: `rt${i}@example.com`, subject: `${tag} ${i}`, text });
    return { envelope: c.envelope, content: c.bytes };
  });
}

/** TCP handshake + the server's flights, all connections since the last reset. */
const wireRoundTrips = () => proxy.snapshot().roundTrips;
/** The server's flights so far (a kept connection keeps counting). */
const serverFlights = () => proxy.snapshot().connections.reduce((s, c) => s + c.serverFlights, 0);

describe('a batch over one session against Exim: round trips counted', () => {
  it('cold batch of 25: 7 round trips (TCP, greeting, EHLO, STARTTLS, TLS, EHLO, one group), 1 connection', async () => {
    const out = await sendBatch(options(), batch(25, 'cold'));
    expect(out.results.every((r) => r.ok)).toBe(true);
    expect(out.roundTrips).toBe(7);
    expect(proxy.snapshot().connections).toHaveLength(1);
    expect(wireRoundTrips()).toBe(7);
    // AUTH PLAIN, then 25 × (RSET?, MAIL, RCPT, BDAT LAST) and QUIT: all in the one write after the second EHLO.
    const c = out.transcript!.filter((l) => l.dir === 'C').map((l) => l.line);
    expect(c.filter((l) => /^BDAT \d+ LAST$/.test(l))).toHaveLength(25);
    expect(c.filter((l) => l === 'RSET')).toHaveLength(24);
    await server.waitForMessages(25);
  });

  it('warm batches of 1, 25 and 100 on a kept session: ONE round trip each', async () => {
    const client = new SmtpClient({ ...options(), reuse: true, idleTimeoutMs: 10_000 });
    try {
      const first = await client.sendBatch(batch(1, 'warm-first'));
      expect(first.roundTrips).toBe(7);
      for (const n of [1, 25, 100]) {
        const before = serverFlights();
        const out = await client.sendBatch(batch(n, `warm-${n}`));
        expect(out.results.every((r) => r.ok)).toBe(true);
        expect(out.reused).toBe(true);
        expect(out.roundTrips).toBe(1);
        // On the wire: one run of replies, on the same connection (no new TCP handshake).
        expect(serverFlights() - before).toBe(1);
        expect(proxy.snapshot().connections).toHaveLength(1);
      }
    } finally {
      await client.close();
    }
  });

  it(`a warm batch over ${MAX_GROUP_OCTETS} octets: one round trip per write of at most that many`, async () => {
    const client = new SmtpClient({ ...options(), reuse: true, idleTimeoutMs: 10_000 });
    try {
      await client.sendBatch(batch(1, 'big-first'));
      // 6 messages of ~300 KiB: three fit the first write, three the second.
      const big = batch(6, 'big', 'x'.repeat(300 * 1024));
      const before = serverFlights();
      const out = await client.sendBatch(big);
      expect(out.results.every((r) => r.ok)).toBe(true);
      expect(out.roundTrips).toBe(2);
      expect(serverFlights() - before).toBe(2);
      expect(proxy.snapshot().connections).toHaveLength(1);
    } finally {
      await client.close();
    }
  });
});
