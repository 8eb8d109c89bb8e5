/**
 * The EHLO name (issue 10: HELO_LOCALHOST +2.6 when the next hop is an MX): "localhost" only to a loopback server;
 * to any other server it must be given and cannot be "localhost". The SMTP secret and the CLI default it to the
 * sender's domain. Checked without any network: the options are refused before a connection is opened.
 */
import { describe, expect, it } from 'vitest';
import { parseSmtpSecret } from '../../functions/config/smtp-secret.ts';
import { resolveOptions } from '../../functions/smtp/connection.ts';
import { SmtpError } from '../../functions/smtp/error.ts';

function refusal(f: () => unknown): SmtpError {
  try {
    f();
  } catch (e) {
    if (e instanceof SmtpError) return e;
    throw e;
  }
  throw new Error('expected an SmtpError');
}

describe('EHLO name', () => {
  it('a loopback server gets "localhost" by default, or the name given', () => {
    expect(resolveOptions({ host: '127.0.0.1' }).clientName).toBe('localhost');
    expect(resolveOptions({ host: '::1' }).clientName).toBe('localhost');
    expect(resolveOptions({ host: 'localhost', clientName: 'example.com' }).clientName).toBe('example.com');
  });

  it('a remote server needs a name: none given → refused (security, before connecting), naming the fix', () => {
    const e = refusal(() => resolveOptions({ host: 'smtp.example.net' }));
    expect(e).toMatchObject({ phase: 'connect', kind: 'security', delivery: 'not-sent' });
    expect(e.message).toMatch(/set clientName to the sending domain/);
  });

  it('"localhost" (or *.localhost) to a remote server is refused; a real domain or literal is used', () => {
    for (const name of ['localhost', 'LOCALHOST', 'mail.localhost', 'localhost.']) {
      const e = refusal(() => resolveOptions({ host: 'smtp.example.net', clientName: name }));
      expect(e, name).toMatchObject({ phase: 'connect', kind: 'security' });
    }
    expect(resolveOptions({ host: 'smtp.example.net', clientName: 'example.com' }).clientName).toBe(
      'example.com',
    );
    expect(resolveOptions({ host: '192.0.2.10', clientName: '[192.0.2.1]' }).clientName).toBe('[192.0.2.1]');
  });

  it("the SMTP secret defaults it to its sender's domain (A-label); clientName in the secret wins", () => {
    const secret = { host: 'smtp.example.net', username: 'u', password: 'p', from: 'noreply@bücher.example' };
    expect(parseSmtpSecret(JSON.stringify(secret)).connection.clientName).toBe('xn--bcher-kva.example');
    const named = parseSmtpSecret(JSON.stringify({ ...secret, clientName: 'mx1.example.org' }));
    expect(named.connection.clientName).toBe('mx1.example.org');
    expect(resolveOptions(parseSmtpSecret(JSON.stringify(secret)).connection).clientName).toBe(
      'xn--bcher-kva.example',
    );
  });
});
