/**
 * The local server against hostile clients (issue #10): a client that sends its request slowly gets the time HTTP
 * API would give it and no more (here a 1 s budget instead of the 30 s default), and a redirect with a CR/LF in it
 * is refused before anything is sent (it used to become a 500 after the mail was delivered).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocal } from '../../local/server.ts';

const BUDGET_MS = 1000;
let stack: LocalStack;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  stack = await startLocal({ port: 0, smtpPort: 0, requestTimeoutMs: BUDGET_MS });
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

/** Send `head` and then nothing; resolve with what the server answered and how long until it closed (≤ 10 s). */
function stall(head: string): Promise<{ answer: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(stack.port, '127.0.0.1', () => socket.write(head));
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after 10 s; answered ${JSON.stringify(answer.slice(0, 100))}`));
    }, 10_000);
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
  });
}

describe('the local server against slow clients', () => {
  it('a body that never finishes arriving: 408 and the connection closed within the budget', async () => {
    const { answer, closedAfterMs } = await stall(
      'POST /forms/contact HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        'Content-Length: 1000\r\n\r\n{"name":',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(closedAfterMs).toBeGreaterThanOrEqual(BUDGET_MS - 50);
    expect(closedAfterMs).toBeLessThan(BUDGET_MS + 4000);
  });

  it('headers that never finish arriving: the connection is closed within the budget', async () => {
    const { closedAfterMs } = await stall('POST /send HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    expect(closedAfterMs).toBeLessThan(BUDGET_MS + 4000);
  });

  it('a request sent in time is served as before', async () => {
    const res = await fetch(`${stack.url}/_local/health`);
    expect(res.status).toBe(200);
  });
});

describe('the local server against header injection', () => {
  it('a _next with CR/LF → 400 before delivery: no Set-Cookie, nothing caught', async () => {
    const before = stack.catcher!.store.list().length;
    const res = await fetch(`${stack.url}/forms/contact`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body:
        'name=Ana&email=ana%40visitor.example&message=Hi' +
        `&_next=${encodeURIComponent(`${stack.url}/thanks`)}%0D%0ASet-Cookie:%20pwn=1`,
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('location')).toBeNull();
    expect(stack.catcher!.store.list().length).toBe(before);
  });
});
