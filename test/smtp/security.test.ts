/**
 * Downgrade and attack cases. Each must be refused, and the server must have seen NO AUTH and NO MAIL bytes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpError, sendMail, verify } from '../../functions/smtp/index.ts';
import { outgoing } from '../support/fixtures.ts';
import { type ScriptedServer, startScriptedServer } from '../support/scripted-server.ts';
import { startSmtpServer, TEST_AUTH, TEST_CA, type TestSmtpServer } from '../support/smtp-server.ts';

const msg = outgoing('b@example.com', 'Subject: s\r\n\r\nsecret body\r\n');

let scripted: ScriptedServer | undefined;
let real: TestSmtpServer | undefined;
afterEach(async () => {
  await scripted?.close();
  await real?.close();
  scripted = undefined;
  real = undefined;
});

async function refused(p: Promise<unknown>): Promise<SmtpError> {
  const e = await p.then(
    () => new Error('expected a refusal'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SmtpError);
  return e as SmtpError;
}

/** Nothing sensitive reached the scripted server. */
function noAuthNoMail(s: ScriptedServer) {
  const all = s.connections.flatMap((c) => c.commands);
  expect(all.filter((c) => /^(AUTH|MAIL|RCPT|DATA|BDAT)/i.test(c))).toEqual([]);
  const bytes = Buffer.concat(s.connections.flatMap((c) => c.received)).toString('latin1');
  expect(bytes).not.toMatch(/AUTH|MAIL FROM|secret body/);
}

describe('STARTTLS downgrade', () => {
  it('STARTTLS not advertised → phase starttls before any AUTH or MAIL (smtp-server)', async () => {
    real = await startSmtpServer({ hideSTARTTLS: true, allowInsecureAuth: true });
    const e = await refused(
      sendMail({ host: '127.0.0.1', port: real.port, ca: TEST_CA, auth: TEST_AUTH }, msg),
    );
    expect(e).toMatchObject({ phase: 'starttls', kind: 'security', delivery: 'not-sent', transient: false });
    expect(real.authAttempts).toEqual([]);
    expect(real.mailFrom).toEqual([]);
  });

  it('STARTTLS not advertised → only EHLO and QUIT on the wire (scripted)', async () => {
    scripted = await startScriptedServer({ extensionsBeforeTls: ['PIPELINING', 'AUTH PLAIN'] });
    const e = await refused(sendMail({ host: '127.0.0.1', port: scripted.port, auth: TEST_AUTH }, msg));
    expect(e.phase).toBe('starttls');
    await scripted.connections[0]!.closed;
    expect(scripted.connections[0]!.commands).toEqual(['EHLO localhost', 'QUIT']);
    noAuthNoMail(scripted);
  });

  it('bytes injected after "220 Ready" (same chunk) → protocol error, no TLS, no AUTH/MAIL', async () => {
    scripted = await startScriptedServer({
      onCommand: (c) =>
        c === 'STARTTLS' ? { reply: '220 Ready\r\n250 injected\r\n', upgrade: true } : undefined,
    });
    const e = await refused(
      sendMail(
        { host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH, transcript: true },
        msg,
      ),
    );
    expect(e).toMatchObject({ phase: 'starttls', kind: 'protocol', delivery: 'not-sent' });
    expect(e.message).toMatch(/injection/);
    expect(scripted.connections[0]!.tlsHandshakes).toBe(0);
    noAuthNoMail(scripted);
  });

  it('a partial injected line after the 220 is refused too', async () => {
    scripted = await startScriptedServer({
      onCommand: (c) => (c === 'STARTTLS' ? { reply: '220 Ready\r\n25', upgrade: true } : undefined),
    });
    const e = await refused(
      sendMail({ host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg),
    );
    expect(e).toMatchObject({ phase: 'starttls', kind: 'protocol' });
    noAuthNoMail(scripted);
  });

  it('bytes injected after "220 Ready" in a later segment → they hit the TLS layer and the handshake fails', async () => {
    scripted = await startScriptedServer({
      onCommand: (c, conn) => {
        if (c !== 'STARTTLS') return undefined;
        setTimeout(() => conn.write('250 injected\r\n'), 30).unref();
        return { reply: '220 Ready\r\n' };
      },
    });
    const e = await refused(
      sendMail({ host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg),
    );
    expect(e).toMatchObject({ phase: 'starttls', delivery: 'not-sent' });
    noAuthNoMail(scripted);
  });

  it('certificate for the wrong name → refused (phase starttls, security)', async () => {
    scripted = await startScriptedServer({ cert: 'wrong' });
    const e = await refused(
      sendMail({ host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg),
    );
    expect(e).toMatchObject({ phase: 'starttls', kind: 'security', transient: false, delivery: 'not-sent' });
    noAuthNoMail(scripted);
  });

  it('certificate checked against an IP host too (no SNI for IPs)', async () => {
    scripted = await startScriptedServer({ cert: 'wrong' });
    const e = await refused(
      sendMail({ host: '127.0.0.1', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg),
    );
    expect(e).toMatchObject({ phase: 'starttls', kind: 'security' });
    // the right certificate for 127.0.0.1 (SAN IP) is accepted
    await scripted.close();
    scripted = await startScriptedServer();
    const ok = await sendMail({ host: '127.0.0.1', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg);
    expect(ok.tls?.subject).toBe('localhost');
  });

  it('untrusted CA (no ca given) → refused', async () => {
    scripted = await startScriptedServer();
    const e = await refused(sendMail({ host: 'localhost', port: scripted.port, auth: TEST_AUTH }, msg));
    expect(e).toMatchObject({ phase: 'starttls', kind: 'security' });
    noAuthNoMail(scripted);
  });

  it('implicit TLS with an untrusted certificate → refused at connect, nothing sent', async () => {
    scripted = await startScriptedServer({ implicitTls: true, cert: 'wrong' });
    const e = await refused(
      sendMail(
        { host: 'localhost', port: scripted.port, security: 'tls', ca: TEST_CA, auth: TEST_AUTH },
        msg,
      ),
    );
    expect(e).toMatchObject({ phase: 'connect', kind: 'security' });
    noAuthNoMail(scripted);
  });
});

describe('after STARTTLS', () => {
  it('capabilities from before TLS are forgotten: EHLO again, only what is offered inside TLS is used', async () => {
    scripted = await startScriptedServer({
      extensionsBeforeTls: ['STARTTLS', 'PIPELINING', 'CHUNKING', 'AUTH PLAIN LOGIN'],
      extensions: ['8BITMIME', 'AUTH LOGIN'],
    });
    const out = await sendMail({ host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg);
    expect(out.capabilities.chunking).toBe(false);
    const cmds = scripted.connections[0]!.commands.map((c) => c.split(' ')[0]);
    expect(cmds.filter((c) => c === 'EHLO')).toHaveLength(2);
    expect(cmds).toContain('DATA');
    expect(cmds).not.toContain('BDAT');
    expect(scripted.connections[0]!.commands).toContain('AUTH LOGIN');
  });
});

describe('AUTH rules', () => {
  it('credentials given but AUTH not advertised after TLS → phase auth, no MAIL (smtp-server)', async () => {
    real = await startSmtpServer({ authMethods: [] });
    const e = await refused(
      sendMail({ host: 'localhost', port: real.port, ca: TEST_CA, auth: TEST_AUTH }, msg),
    );
    expect(e).toMatchObject({ phase: 'auth', kind: 'security', delivery: 'not-sent' });
    expect(real.mailFrom).toEqual([]);
    expect(real.messages).toEqual([]);
  });

  it('never AUTH in clear text, even on loopback, unless allowPlaintextAuth', async () => {
    scripted = await startScriptedServer({
      extensionsBeforeTls: [],
      extensions: ['PIPELINING', 'AUTH PLAIN'],
    });
    const e = await refused(
      sendMail({ host: '127.0.0.1', port: scripted.port, security: 'none', auth: TEST_AUTH }, msg),
    );
    expect(e).toMatchObject({ phase: 'auth', kind: 'security' });
    noAuthNoMail(scripted);
    const ok = await sendMail(
      { host: '127.0.0.1', port: scripted.port, security: 'none', auth: TEST_AUTH, allowPlaintextAuth: true },
      msg,
    );
    expect(ok.response.code).toBe(250);
  });

  it('clear text to a non-loopback host is refused before connecting', async () => {
    for (const host of ['mail.example.com', '192.0.2.10', '::2']) {
      const e = await refused(sendMail({ host, port: 1, security: 'none' }, msg));
      expect(e).toMatchObject({ phase: 'connect', kind: 'security' });
    }
    await expect(verify({ host: 'example.com', port: 1, security: 'none' })).rejects.toThrow(/clear-text/);
  });

  it('the chosen mechanism must be advertised', async () => {
    scripted = await startScriptedServer({ extensions: ['PIPELINING', 'AUTH PLAIN'] });
    const e = await refused(
      sendMail(
        { host: 'localhost', port: scripted.port, ca: TEST_CA, auth: { ...TEST_AUTH, mechanism: 'LOGIN' } },
        msg,
      ),
    );
    expect(e).toMatchObject({ phase: 'auth' });
    noAuthNoMail(scripted);
  });
});

describe('injection through arguments', () => {
  it('CR/LF in an address, the EHLO name or credentials → refused before connecting', async () => {
    scripted = await startScriptedServer();
    const base = { host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH };
    const bad = [
      () => sendMail(base, { ...msg, envelope: { from: 'a@example.com\r\nRSET', to: ['b@example.com'] } }),
      () => sendMail(base, { ...msg, envelope: { from: 'a@example.com', to: ['b@example.com>\r\nDATA'] } }),
      () => sendMail({ ...base, clientName: 'x\r\nMAIL FROM:<evil@example.com>' }, msg),
    ];
    for (const f of bad) {
      const e = await refused(f());
      expect(e.kind).toBe('usage');
    }
    expect(scripted.connections).toHaveLength(0);
    // credentials are checked before they are encoded: the session stops at AUTH, nothing of it is written
    const e = await refused(sendMail({ ...base, auth: { username: 'u\r\nMAIL', password: 'p' } }, msg));
    expect(e).toMatchObject({ phase: 'auth', kind: 'usage' });
    noAuthNoMail(scripted);
  });
});

describe('trust store', () => {
  it('the extra CA is added to the default roots once per distinct CA, and still verifies', async () => {
    const { contextWithExtraCa } = await import('../../functions/smtp/starttls.ts');
    const a = await contextWithExtraCa(TEST_CA);
    expect(await contextWithExtraCa(TEST_CA)).toBe(a); // reused, not rebuilt per connection
    expect(await contextWithExtraCa(Buffer.from(TEST_CA))).toBe(a);
    expect(await contextWithExtraCa([TEST_CA, TEST_CA])).not.toBe(a);
    // two sends with the cached context: the right certificate passes, the wrong name still fails
    scripted = await startScriptedServer();
    await sendMail({ host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg);
    await sendMail({ host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg);
    await scripted.close();
    scripted = await startScriptedServer({ cert: 'wrong' });
    const e = await refused(
      sendMail({ host: 'localhost', port: scripted.port, ca: TEST_CA, auth: TEST_AUTH }, msg),
    );
    expect(e).toMatchObject({ phase: 'starttls', kind: 'security' });
  });
});
