/**
 * The benchmark harness itself: the latency proxy must forward bytes intact and in order, add at
 * least the configured delay, and count round trips the same way for any client. Only lower bounds
 * of time are checked (a delay can never be shorter than injected); no speed is asserted.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodemailerClient } from '../../bench/clients.ts';
import { benchMessage } from '../../bench/message.ts';
import { type Peer, startSmtpServerPeer } from '../../bench/peers.ts';
import { type LatencyProxy, startLatencyProxy } from '../../bench/proxy.ts';
import { mode, quantile, summarize } from '../../bench/stats.ts';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A TCP server on 127.0.0.1:0 running `onConnection`; closed after the suite. */
async function scriptedServer(onConnection: (s: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

async function proxyTo(port: number, delay: number): Promise<LatencyProxy> {
  const proxy = await startLatencyProxy(port, delay);
  cleanups.push(() => proxy.close());
  return proxy;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Read until `n` bytes arrived (bounded by a timeout). */
function readBytes(s: net.Socket, n: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => reject(new Error(`timeout after ${got}/${n} bytes`)), timeoutMs);
    const onData = (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= n) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    s.on('data', onData);
  });
}

describe('latency proxy: forwarding', () => {
  it('delivers a stream of many small writes intact and in order, both ways', async () => {
    const port = await scriptedServer((s) => s.pipe(s)); // echo
    const proxy = await proxyTo(port, 2);
    const client = await connect(proxy.port);
    const total = 200_000;
    const sent = Buffer.alloc(total);
    for (let i = 0; i < total; i++) sent[i] = (i * 7 + (i >> 8)) & 0xff;
    const received = readBytes(client, total);
    // 1–997 byte writes, so chunks of every size overlap in the queues.
    for (let off = 0, i = 0; off < total && i < 10_000; i++) {
      const size = 1 + ((i * 131) % 997);
      client.write(sent.subarray(off, off + size));
      off += size;
    }
    expect((await received).equals(sent)).toBe(true);
    client.destroy();
  });

  it('adds at least the one-way delay per direction plus the emulated TCP handshake', async () => {
    const delay = 40;
    const port = await scriptedServer((s) => s.pipe(s));
    const proxy = await proxyTo(port, delay);
    const client = await connect(proxy.port);
    const t0 = performance.now();
    client.write('ping');
    await readBytes(client, 4);
    const firstEcho = performance.now() - t0;
    const t1 = performance.now();
    client.write('pong');
    await readBytes(client, 4);
    const secondEcho = performance.now() - t1;
    client.destroy();
    // First write waits for the handshake (3 one-way) and comes back (1 one-way) at the earliest;
    // timers never fire early by more than their 1 ms granularity.
    expect(firstEcho).toBeGreaterThanOrEqual(4 * delay - 2);
    expect(secondEcho).toBeGreaterThanOrEqual(2 * delay - 2);
  });

  it('forwards end-of-stream after the queued data and closes everything on close()', async () => {
    const port = await scriptedServer((s) => {
      s.end('bye\r\n');
    });
    const proxy = await proxyTo(port, 5);
    const client = await connect(proxy.port);
    const chunks: Buffer[] = [];
    client.on('data', (b: Buffer) => chunks.push(b));
    await new Promise<void>((resolve) => client.once('end', resolve));
    expect(Buffer.concat(chunks).toString()).toBe('bye\r\n');
    client.destroy();

    const open = await connect(proxy.port);
    const closed = new Promise<void>((resolve) => open.once('close', () => resolve()));
    open.on('error', () => {});
    await proxy.close();
    await closed;
  });
});

describe('latency proxy: round-trip counter', () => {
  it('counts flights on direction switches, not on chunks', async () => {
    // Server speaks first; then answers each client line with two separate writes.
    const port = await scriptedServer((s) => {
      s.write('220 hi\r\n');
      let buf = '';
      s.on('data', (b: Buffer) => {
        buf += b.toString();
        let i = buf.indexOf('\n');
        while (i >= 0) {
          buf = buf.slice(i + 1);
          s.write('250-a\r\n');
          setTimeout(() => s.write('250 b\r\n'), 1);
          i = buf.indexOf('\n');
        }
      });
    });
    const proxy = await proxyTo(port, 10);
    const client = await connect(proxy.port);
    await readBytes(client, 8); // greeting: server flight 1
    client.write('ONE\r\n'); // client flight 1: three lines in three writes, no wait between
    client.write('TWO\r\n');
    client.write('THREE\r\n');
    await readBytes(client, 3 * 14); // server flight 2 (six writes)
    client.write('FOUR\r\n'); // client flight 2
    await readBytes(client, 14); // server flight 3
    const stats = proxy.snapshot();
    client.destroy();
    expect(stats.connections).toHaveLength(1);
    expect(stats.connections[0]!.clientFlights).toBe(2);
    expect(stats.connections[0]!.serverFlights).toBe(3);
    // TCP handshake + three waits for the server.
    expect(stats.roundTrips).toBe(4);
  });

  it('reset() forgets past connections', async () => {
    const port = await scriptedServer((s) => s.end('220 x\r\n'));
    const proxy = await proxyTo(port, 0);
    const client = await connect(proxy.port);
    await readBytes(client, 7);
    client.destroy();
    expect(proxy.snapshot().connections.length).toBe(1);
    proxy.reset();
    expect(proxy.snapshot()).toEqual({ connections: [], roundTrips: 0, clientFlights: 0 });
  });
});

describe('latency proxy: a real SMTP conversation (nodemailer 10 against smtp-server)', () => {
  let starttls: Peer;
  let implicitTls: Peer;
  beforeAll(async () => {
    starttls = await startSmtpServerPeer('starttls');
    implicitTls = await startSmtpServerPeer('tls');
    cleanups.push(
      () => starttls.close(),
      () => implicitTls.close(),
    );
  });

  // Known reference (protocol notes): nodemailer 10.6 needs 9 round trips for STARTTLS + AUTH + one
  // message against a PIPELINING server: TCP, greeting, EHLO, STARTTLS, TLS 1.3, EHLO, AUTH,
  // [MAIL RCPT DATA], body. On implicit TLS the greeting follows TLS and STARTTLS + one EHLO go away.
  // 25 ms one-way (as in the benchmark): with almost no delay a TLS session ticket can arrive between
  // two writes of one client flight on a busy machine and split it.
  it('counts 9 round trips for STARTTLS + AUTH + one message', async () => {
    const proxy = await proxyTo(starttls.port, 25);
    await nodemailerClient.sendOne({ port: proxy.port, security: 'starttls' }, benchMessage(1));
    expect(proxy.snapshot().roundTrips).toBe(9);
  });

  it('counts 7 round trips on implicit TLS', async () => {
    const proxy = await proxyTo(implicitTls.port, 25);
    await nodemailerClient.sendOne({ port: proxy.port, security: 'tls' }, benchMessage(2));
    expect(proxy.snapshot().roundTrips).toBe(7);
  });
});

describe('stats', () => {
  it('quantiles, summary and mode', () => {
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([0, 10], 0.1)).toBe(1);
    expect(Number.isNaN(quantile([], 0.5))).toBe(true);
    expect(summarize([5, 1, 3])).toMatchObject({ n: 3, median: 3, min: 1, max: 5 });
    expect(mode([9, 8, 9, 8, 7])).toBe(8);
  });
});
