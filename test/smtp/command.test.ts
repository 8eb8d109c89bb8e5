import { describe, expect, it } from 'vitest';
import * as cmd from '../../functions/smtp/command.ts';
import { SmtpError } from '../../functions/smtp/error.ts';
import { loginResponses, plainInitialResponse, xoauth2InitialResponse } from '../../functions/smtp/sasl.ts';

const BAD = ['\r', '\n', '\0', '\r\nRCPT TO:<evil@example.com>'];

function expectRefused(fn: () => unknown, phase: string) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SmtpError);
    expect((e as SmtpError).kind).toBe('usage');
    expect((e as SmtpError).phase).toBe(phase);
    return;
  }
  throw new Error('expected a refusal');
}

describe('command choke point', () => {
  it('builds the exact command lines', () => {
    expect(cmd.mail('a@example.com', [{ keyword: 'SIZE', value: '12' }, { keyword: 'SMTPUTF8' }]).line).toBe(
      'MAIL FROM:<a@example.com> SIZE=12 SMTPUTF8',
    );
    expect(cmd.mail('').line).toBe('MAIL FROM:<>');
    expect(cmd.rcpt('b@example.com').line).toBe('RCPT TO:<b@example.com>');
    expect(cmd.bdat(10, true).line).toBe('BDAT 10 LAST');
    expect(new TextDecoder().decode(cmd.encodeCommand(cmd.ehlo('client.example.com')))).toBe(
      'EHLO client.example.com\r\n',
    );
  });

  it('refuses CR, LF and NUL in every argument kind', () => {
    for (const bad of BAD) {
      expectRefused(() => cmd.mail(`a${bad}@example.com`), 'mail');
      expectRefused(() => cmd.rcpt(`b${bad}@example.com`), 'rcpt');
      expectRefused(() => cmd.ehlo(`host${bad}`), 'ehlo');
      expectRefused(() => cmd.auth('PLAIN', `AAAA${bad}`), 'auth');
      expectRefused(() => cmd.auth(`PLAIN${bad}`), 'auth');
      expectRefused(() => cmd.saslResponse(`AAAA${bad}`), 'auth');
      expectRefused(() => cmd.mail('a@example.com', [{ keyword: 'SIZE', value: `1${bad}` }]), 'mail');
      expectRefused(() => cmd.mail('a@example.com', [{ keyword: `X${bad}` }]), 'mail');
      expectRefused(() => cmd.rcpt('b@example.com', [{ keyword: 'NOTIFY', value: `NEVER${bad}` }]), 'rcpt');
      expectRefused(() => plainInitialResponse(`user${bad}`, 'pw'), 'auth');
      expectRefused(() => plainInitialResponse('user', `pw${bad}`), 'auth');
      expectRefused(() => loginResponses(`user${bad}`, 'pw'), 'auth');
      expectRefused(() => xoauth2InitialResponse('user', `tok${bad}`), 'auth');
    }
  });

  it('refuses other address tricks: angle brackets, spaces, controls', () => {
    expectRefused(() => cmd.mail('a@example.com> SIZE=1'), 'mail');
    expectRefused(() => cmd.rcpt('b@example.com> NOTIFY=NEVER'), 'rcpt');
    expectRefused(() => cmd.rcpt('b @example.com'), 'rcpt');
    expectRefused(() => cmd.rcpt('b\t@example.com'), 'rcpt');
    expectRefused(() => cmd.rcpt(''), 'rcpt');
    expect(cmd.rcpt('"john doe"@example.com').line).toBe('RCPT TO:<"john doe"@example.com>');
  });

  it('a refused address is not repeated in the error (it reaches logs and answers)', () => {
    for (const address of [
      'secret.local\u00a0part@example.com',
      'secret.local part@example.com',
      'secret<x@example.com',
    ]) {
      expect(() => cmd.rcpt(address)).toThrow(SmtpError);
      try {
        cmd.rcpt(address);
      } catch (e) {
        expect((e as Error).message).not.toContain('secret');
      }
    }
  });

  it('validates the EHLO name: domain or address literal', () => {
    for (const ok of ['localhost', 'mail.example.com', '[192.0.2.1]', '[IPv6:2001:db8::1]', 'a-b.c']) {
      expect(cmd.isValidClientName(ok)).toBe(true);
    }
    for (const bad of [
      '',
      '-a.com',
      'a..b',
      'a b',
      '[999.1.1.1]',
      '[IPv6:zz]',
      'x_y.com',
      `${'a'.repeat(64)}.com`,
    ]) {
      expect(cmd.isValidClientName(bad)).toBe(false);
    }
  });

  it('redacts AUTH payloads', () => {
    const c = cmd.auth('PLAIN', plainInitialResponse('u', 'secret'));
    expect(c.redacted).toBe('AUTH PLAIN ***');
    expect(c.line).toMatch(/^AUTH PLAIN [A-Za-z0-9+/=]+$/);
    expect(cmd.saslResponse('c2VjcmV0').redacted).toBe('***');
  });
});

describe('SASL encodings', () => {
  it('PLAIN: base64(NUL user NUL password)', () => {
    expect(Buffer.from(plainInitialResponse('tim', 'tanstaaftanstaaf'), 'base64').toString()).toBe(
      '\0tim\0tanstaaftanstaaf',
    );
    // RFC 4616 example-like, UTF-8
    expect(plainInitialResponse('user', 'pässword')).toBe(Buffer.from('\0user\0pässword').toString('base64'));
  });
  it('LOGIN: username and password, each base64', () => {
    expect(loginResponses('user', 'pw')).toEqual(['dXNlcg==', 'cHc=']);
  });
  it('XOAUTH2: user=…^Aauth=Bearer …^A^A', () => {
    expect(Buffer.from(xoauth2InitialResponse('me@example.com', 'ya29.tok'), 'base64').toString()).toBe(
      'user=me@example.com\x01auth=Bearer ya29.tok\x01\x01',
    );
  });
});
