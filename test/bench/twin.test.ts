/**
 * The benchmark's two other moving parts: (1) the proxy's neutral round-trip count agrees with what
 * our client reports about itself, on the same connections; (2) the nodemailer twin used for the
 * cold-start comparison really sends what the handler composed (checked with mailparser).
 */
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchClient, loadOurClient } from '../../bench/clients.ts';
import { benchMessage } from '../../bench/message.ts';
import { BENCH_AUTH, type Peer, startSmtpServerPeer, TLS_MATERIAL } from '../../bench/peers.ts';
import { type LatencyProxy, startLatencyProxy } from '../../bench/proxy.ts';
import { compose, MimeError, parseMailbox } from '../../bench/twin/mime.ts';
import { SmtpClient } from '../../bench/twin/smtp.ts';

const received: Buffer[] = [];
let starttls: Peer;
let implicitTls: Peer;
const proxies: LatencyProxy[] = [];

beforeAll(async () => {
  starttls = await startSmtpServerPeer('starttls', (raw) => received.push(raw));
  implicitTls = await startSmtpServerPeer('tls');
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  await starttls?.close();
  await implicitTls?.close();
});

describe('round trips: proxy count vs our client’s own count', () => {
  let ours: BenchClient;
  beforeAll(async () => {
    const loaded = await loadOurClient();
    if (typeof loaded === 'string') throw new Error(loaded);
    ours = loaded;
  });

  for (const security of ['starttls', 'tls'] as const) {
    it(`agree on one message over ${security}`, async () => {
      const peer = security === 'tls' ? implicitTls : starttls;
      const proxy = await startLatencyProxy(peer.port, 25);
      proxies.push(proxy);
      const result = await ours.sendOne({ port: proxy.port, security }, benchMessage(7));
      const seen = proxy.snapshot();
      expect(seen.connections).toHaveLength(1);
      expect(result.ownRoundTrips).toBe(seen.roundTrips);
    });
  }
});

describe('nodemailer twin (bench/twin)', () => {
  it('sends what compose() was given, through nodemailer', async () => {
    const before = received.length;
    const composed = compose({
      from: { address: 'noreply@example.com', name: 'Bench' },
      to: ['Ann <ann@example.com>'],
      bcc: 'hidden@example.com',
      subject: 'Twin check ✓',
      text: 'Hello from the twin.\n.leading dot\n',
    });
    expect(composed.envelope).toEqual({
      from: 'noreply@example.com',
      to: ['ann@example.com', 'hidden@example.com'],
    });
    const client = new SmtpClient({
      host: '127.0.0.1',
      port: starttls.port,
      security: 'starttls',
      ca: TLS_MATERIAL.ca,
      servername: 'localhost',
      auth: BENCH_AUTH,
      reuse: false,
    });
    try {
      const out = await client.send({ envelope: composed.envelope, content: composed.bytes });
      expect(out.accepted.map((a) => a.address).sort()).toEqual(['ann@example.com', 'hidden@example.com']);
    } finally {
      await client.close();
    }
    expect(received.length).toBe(before + 1);
    const mail = await simpleParser(received.at(-1)!);
    expect(mail.subject).toBe('Twin check ✓');
    expect(mail.text).toBe('Hello from the twin.\n.leading dot\n');
    expect(mail.messageId).toBe(composed.messageId);
    expect(mail.headers.has('bcc')).toBe(false);
  });

  it('parses mailboxes with nodemailer and refuses non-addresses with the product’s MimeError', () => {
    expect(parseMailbox('Ann Example <ann@example.com>')).toEqual({
      address: 'ann@example.com',
      name: 'Ann Example',
    });
    expect(() => parseMailbox('not an address')).toThrow(MimeError);
  });
});
