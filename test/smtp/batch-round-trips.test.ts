/**
 * Round trips of a batch over ONE session against Exim (CHUNKING + PIPELINING), counted by the client
 * (`roundTrips`: every write after which it waits) and checked on the wire by the latency proxy in front of Exim
 * (bench/proxy.ts, 0 ms): the connections, and the client's flights — runs of client bytes with no server byte
 * before them since the last run. A batch written without waiting between its transactions (RFC 2920 / RFC 3030)
 * reaches the server as ONE flight. (The server's flights are not counted: Exim may answer the first BDAT of a
 * large write before the rest of it has arrived.) A cold batch costs the set-up + ONE round trip, a warm batch ONE,
 * whatever the number of messages — up to `MAX_GROUP_OCTETS` per write, one more round trip per further write.
 * Counts only, never wall-clock.
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

/** The client's flights so far (a kept connection keeps counting). */
const clientFlights = () => proxy.snapshot().clientFlights;

describe('a batch over one session against Exim: round trips counted', () => {
  it('cold batch of 25: 7 round trips (TCP, greeting, EHLO, STARTTLS, TLS, EHLO, one group), 1 connection', async () => {
    const out = await sendBatch(options(), batch(25, 'cold'));
    expect(out.results.every((r) => r.ok)).toBe(true);
    expect(out.roundTrips).toBe(7);
    expect(proxy.snapshot().connections).toHaveLength(1);
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
        const before = clientFlights();
        const out = await client.sendBatch(batch(n, `warm-${n}`));
        expect(out.results.every((r) => r.ok)).toBe(true);
        expect(out.reused).toBe(true);
        expect(out.roundTrips).toBe(1);
        // On the wire: the whole batch as one flight, on the same connection (no new TCP handshake).
        expect(clientFlights() - before).toBe(1);
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
      const out = await client.sendBatch(big);
      expect(out.results.every((r) => r.ok)).toBe(true);
      expect(out.roundTrips).toBe(2);
      expect(proxy.snapshot().connections).toHaveLength(1);
    } finally {
      await client.close();
    }
  });
});
