/** Command-line parsing of smtp-send: URL forms, defaults, and what is refused. */
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../functions/cli/args.ts';
import { parseSmtpUrl, redactUrl } from '../../functions/cli/smtp-url.ts';
import { UsageError } from '../../functions/cli/usage-error.ts';

describe('parseSmtpUrl', () => {
  it('smtp:// is STARTTLS on 587, smtps:// implicit TLS on 465; the user is percent-decoded', () => {
    expect(parseSmtpUrl('smtp://me%40example.com@mail.example.com')).toEqual({
      host: 'mail.example.com',
      port: 587,
      security: 'starttls',
      user: 'me@example.com',
    });
    expect(parseSmtpUrl('smtps://u%2Bx@mail.example.com')).toEqual({
      host: 'mail.example.com',
      port: 465,
      security: 'tls',
      user: 'u+x',
    });
    expect(parseSmtpUrl('SMTP://Mail.Example.com:2525')).toEqual({
      host: 'mail.example.com',
      port: 2525,
      security: 'starttls',
    });
    expect(parseSmtpUrl('smtp://[::1]:25').host).toBe('::1');
    expect(parseSmtpUrl('smtp://mäil.example').host).toBe('xn--mil-qla.example');
    expect(parseSmtpUrl('smtp://h.example/').host).toBe('h.example');
  });

  it('refuses a password (even an empty-looking one), other schemes, paths, queries, bad encodings', () => {
    expect(() => parseSmtpUrl('smtp://u:p@h.example')).toThrow(/contains a password: refused/);
    expect(() => parseSmtpUrl('smtp://u:%20@h.example')).toThrow(UsageError);
    expect(() => parseSmtpUrl('http://h.example')).toThrow(/scheme must be/);
    expect(() => parseSmtpUrl('smtp://h.example/x')).toThrow(/no path/);
    expect(() => parseSmtpUrl('smtp://h.example?x=1')).toThrow(/no query/);
    expect(() => parseSmtpUrl('smtp://%E0%A4%A@h.example')).toThrow(/percent-encoding/);
    expect(() => parseSmtpUrl('not a url')).toThrow(/not a URL/);
  });

  it('redactUrl hides what could be a password', () => {
    expect(redactUrl('smtp://user:hunter2@h.example:587')).toBe('smtp://user:***@h.example:587');
    expect(redactUrl('smtp://user@h.example')).toBe('smtp://user@h.example');
  });
});

describe('parseCommandLine', () => {
  it('defaults: starttls, port 587, 30 s, no auth', () => {
    const c = parseCommandLine(['verify', '--host', 'mail.example.com']);
    expect(c).toEqual({
      kind: 'verify',
      connection: {
        host: 'mail.example.com',
        port: 587,
        security: 'starttls',
        timeoutMs: 30_000,
        allowPlaintext: false,
      },
      output: { json: false, transcript: false },
    });
  });

  it('--security tls defaults to 465; --security overrides the URL scheme; --timeout in seconds', () => {
    const c = parseCommandLine(['verify', '--host', 'h.example', '--security', 'tls', '--timeout', '2.5']);
    expect(c.kind === 'verify' && c.connection).toMatchObject({
      port: 465,
      security: 'tls',
      timeoutMs: 2500,
    });
    const u = parseCommandLine(['verify', '--url', 'smtp://127.0.0.1:2525', '--security', 'none']);
    expect(u.kind === 'verify' && u.connection).toMatchObject({ port: 2525, security: 'none' });
  });

  it('send: repeatable --to/--cc/--bcc/--attach, xoauth2 with --token-env', () => {
    const c = parseCommandLine([
      'send',
      '--url',
      'smtps://me%40example.com@h.example',
      '--auth',
      'XOAUTH2',
      '--token-env',
      'TOKEN',
      '--from',
      'me@example.com',
      '--to',
      'a@example.com',
      '--to',
      'b@example.com',
      '--bcc',
      'c@example.com',
      '--subject',
      's',
      '--text',
      't',
      '--attach',
      'x.pdf',
      '--attach',
      'y.png',
    ]);
    expect(c.kind).toBe('send');
    if (c.kind !== 'send') return;
    expect(c.connection).toMatchObject({ user: 'me@example.com', auth: 'xoauth2', secretEnv: 'TOKEN' });
    expect(c.message).toMatchObject({
      to: ['a@example.com', 'b@example.com'],
      bcc: ['c@example.com'],
      cc: [],
    });
    expect(c.message.attach).toEqual(['x.pdf', 'y.png']);
  });

  it('help forms', () => {
    expect(parseCommandLine([])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['--help'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['help', 'send'])).toEqual({ kind: 'help', topic: 'send' });
    expect(parseCommandLine(['send', '-h'])).toEqual({ kind: 'help', topic: 'send' });
  });

  it('never takes a password on the command line', () => {
    expect(() => parseCommandLine(['verify', '--host', 'h', '--password', 'x'])).toThrow(
      /no --password option/,
    );
    expect(() => parseCommandLine(['verify', '--host', 'h', '--pass=x'])).toThrow(/no --password option/);
    // --password-env takes a variable NAME; something that is not a name is refused without being echoed
    expect(() =>
      parseCommandLine(['verify', '--host', 'h', '--user', 'u', '--password-env', 's3cr3t!']),
    ).toThrow(/^--password-env takes the NAME of an environment variable, not its value$/);
  });
});
