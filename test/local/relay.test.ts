/**
 * Real-SMTP mode (`npm start -- --smtp-url smtps://user@host:465`): the handler's secret points at another
 * server — here a real smtp-server with implicit TLS and AUTH, standing in for a provider — and nothing is caught
 * locally. The user is percent-decoded; the password only comes from SMTP_PASSWORD.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListenerSwitch } from '../../local/listener-switch.ts';
import { type LocalStack, relaySecret, startLocal } from '../../local/server.ts';
import { postContactForm, until } from '../support/delivery-queues.ts';

const certs = fileURLToPath(new URL('../../certs/dev/', import.meta.url));
const USER = 'relay@example.com';
const PASSWORD = 'p@ss:w/rd%';

let relay: SMTPServer;
let relayPort: number;
const received: Array<{ user: unknown; secure: boolean; subject: string | undefined; rcpt: string[] }> = [];
let stack: LocalStack;
let relayed: ListenerSwitch;

beforeAll(async () => {
  relay = new SMTPServer({
    secure: true,
    key: readFileSync(`${certs}localhost.key`),
    cert: readFileSync(`${certs}localhost.pem`),
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    closeTimeout: 200,
    onAuth(auth, _s, cb) {
      if (auth.username === USER && auth.password === PASSWORD) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Invalid credentials'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      simpleParser(stream)
        .then((m) => {
          received.push({
            user: session.user,
            secure: session.secure,
            subject: m.subject,
            rcpt: session.envelope.rcptTo.map((r) => r.address),
          });
          cb();
        })
        .catch(cb);
    },
  });
  relay.on('error', () => {});
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
  relayPort = (relay.server.address() as AddressInfo).port;
  relayed = new ListenerSwitch(relay.server); // from the first connection on: down() drops the warm session too
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  stack = await startLocal({
    port: 0,
    retryBaseSeconds: 1,
    retryMaxSeconds: 2,
    relay: {
      url: `smtps://${encodeURIComponent(USER)}@127.0.0.1:${relayPort}`,
      password: PASSWORD,
      from: 'noreply@example.com',
      // The stand-in relay's certificate is from the DEV-ONLY test CA: trusted explicitly, still verified.
      ca: readFileSync(`${certs}ca.pem`, 'utf8'),
    },
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await new Promise<void>((r) => relay.close(() => r()));
});

describe('relay mode', () => {
  it('sends through the real server over implicit TLS with the percent-decoded user', async () => {
    expect(stack.catcher).toBeUndefined();
    expect(stack.smtpPort).toBeUndefined();
    const res = await fetch(`${stack.url}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'team@example.com', subject: 'Relayed', text: 'hi' }),
    });
    expect(res.status).toBe(200);
    expect(received).toEqual([{ user: USER, secure: true, subject: 'Relayed', rcpt: ['team@example.com'] }]);
    expect(stack.banner()).toContain(`relaying to smtps://…@127.0.0.1:${relayPort}`);
    expect(stack.banner()).not.toContain(PASSWORD);
    expect(stack.banner()).not.toContain('relay%40example.com');
  });

  it('the relay down: a form post is queued at once and delivered through the relay, once, when it is back', async () => {
    await relayed.down();
    const answer = await postContactForm(stack.url, 7, 'script');
    expect(answer.status).toBe(202); // sync-then-queue (the forms default): refused → queued, answered
    expect(stack.delivery.queued().map((q) => q.messageId)).toContain(answer.messageId);
    await new Promise((r) => setTimeout(r, 1500)); // the consumer tries meanwhile, and is refused
    const before = received.length;
    await relayed.up();
    await until(() => received.length > before, 20_000, 'the arrival through the relay');
    await until(() => stack.delivery.queued().length === 0, 20_000, 'an empty queue');
    expect(received.slice(before)).toEqual([
      expect.objectContaining({ user: USER, secure: true, rcpt: ['team@example.com'] }),
    ]);
  }, 40_000);

  it('the inbox says nothing is caught', async () => {
    const page = await fetch(`${stack.url}/inbox`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('nothing is caught here');
    expect((await fetch(`${stack.url}/inbox/api/messages`)).status).toBe(404);
  });

  it('turns the URL into the secret, refusing a password in the URL and a missing SMTP_PASSWORD', () => {
    expect(
      relaySecret(
        { url: 'smtp://me%2Bx@mail.example.com', password: 'pw', from: 'a@example.com' },
        undefined,
      ),
    ).toEqual({
      host: 'mail.example.com',
      port: 587,
      security: 'starttls',
      username: 'me+x',
      password: 'pw',
      from: 'a@example.com',
    });
    expect(relaySecret({ url: 'smtps://u@[::1]', password: 'pw' }, 'b@example.com')).toMatchObject({
      host: '::1',
      port: 465,
      security: 'tls',
      from: 'b@example.com',
    });
    expect(() =>
      relaySecret({ url: 'smtps://u:secret@h:465', password: 'pw', from: 'a@x.example' }, undefined),
    ).toThrow(/SMTP_PASSWORD instead/);
    expect(() => relaySecret({ url: 'smtps://u@h:465', from: 'a@x.example' }, undefined)).toThrow(
      /set SMTP_PASSWORD/,
    );
    expect(() => relaySecret({ url: 'https://u@h', password: 'pw', from: 'a@x.example' }, undefined)).toThrow(
      /smtps:\/\//,
    );
    expect(() => relaySecret({ url: 'smtps://u@h', password: 'pw' }, undefined)).toThrow(/--from/);
  });
});
