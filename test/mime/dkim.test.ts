/**
 * DKIM signing, checked by two independent verifiers (mailauth and Debian's python3-dkim) with the public keys
 * handed to their resolvers; and once through the real SMTP client to smtp-server, on the bytes that arrived.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DkimSigner,
  dkimDnsRecord,
  dkimSigner,
  relaxedBody,
  relaxedHeader,
  signMessage,
} from '../../functions/mime/dkim.ts';
import { compose, MimeError } from '../../functions/mime/index.ts';
import type { MessageInput } from '../../functions/mime/types.ts';
import { sendMail } from '../../functions/smtp/index.ts';
import { type DkimRecords, verifyWithMailauth, verifyWithPythonDkim } from '../support/dkim-verifiers.ts';
import { startSmtpServer, TEST_AUTH, TEST_CA, type TestSmtpServer } from '../support/smtp-server.ts';
import { fixedOptions } from './support.ts';

const pem = (k: { export(o: { format: 'pem'; type: 'pkcs8' }): string | Buffer }) =>
  String(k.export({ format: 'pem', type: 'pkcs8' }));
const rsaKey = pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
const edKey = pem(generateKeyPairSync('ed25519').privateKey);
const rsa = dkimSigner({ domain: 'example.com', selector: 'rsa2026', privateKey: rsaKey });
const ed = dkimSigner({ domain: 'Example.COM', selector: 'ed2026', privateKey: edKey });

function records(...signers: DkimSigner[]): DkimRecords {
  return Object.fromEntries(signers.map((s) => [`${s.selector}._domainkey.${s.domain}`, dkimDnsRecord(s)]));
}

async function bothVerifiers(bytes: Uint8Array, recs: DkimRecords) {
  const [a, b] = await Promise.all([verifyWithMailauth(bytes, recs), verifyWithPythonDkim(bytes, recs)]);
  return { mailauth: a.results, python: b.results };
}

const NOW = Date.UTC(2026, 10, 26, 4, 5, 6);

const messages: Record<string, MessageInput> = {
  'plain text': {
    from: 'Mailer <noreply@example.com>',
    to: 'team@example.com',
    subject: 'Contact form',
    text: 'Hello,\n\nit works.\n',
  },
  'html + text + attachment, cc and reply-to, folded long subject': {
    from: { name: 'Zoë Ünïcode', address: 'noreply@example.com' },
    to: ['a@example.com', 'b@example.org'],
    cc: 'c@example.net',
    replyTo: 'visitor@example.org',
    subject: `A long subject that must be folded: ${'wörd '.repeat(30)}`,
    text: 'trailing spaces   \n\tand tabs\t\t\n\n\n\n',
    html: '<p>Hello <b>there</b></p>',
    attachments: [{ filename: 'notes.txt', content: new TextEncoder().encode('a\r\nb\r\n') }],
    headers: { 'List-Id': '<forms.example.com>' },
  },
  'lines starting with a dot (dot-stuffing is not signed)': {
    from: 'noreply@example.com',
    to: 'team@example.com',
    subject: 'dots',
    text: '.\n..leading dots\n. \nend',
  },
};

describe('DKIM signatures verify with mailauth and python3-dkim', () => {
  for (const [name, input] of Object.entries(messages)) {
    it(`rsa-sha256: ${name}`, async () => {
      const signed = signMessage(compose(input, fixedOptions(3)), [rsa], NOW);
      const r = await bothVerifiers(signed.bytes, records(rsa));
      expect(r.mailauth).toMatchObject([{ status: 'pass', algorithm: 'rsa-sha256', domain: 'example.com' }]);
      expect(r.python).toEqual([
        { status: 'pass', algorithm: 'rsa-sha256', domain: 'example.com', selector: 'rsa2026' },
      ]);
    });
  }

  it('ed25519-sha256 (RFC 8463), raw UTF-8 headers (SMTPUTF8)', async () => {
    const input = { ...messages['plain text']!, subject: 'Grüße — 日本語', to: 'jörg@example.com' };
    const signed = signMessage(
      compose(input, fixedOptions(4, { smtpUtf8: true, eightBitMime: true })),
      [ed],
      NOW,
    );
    expect(signed.smtpUtf8).toBe(true);
    const r = await bothVerifiers(signed.bytes, records(ed));
    expect(r.mailauth).toMatchObject([{ status: 'pass', algorithm: 'ed25519-sha256' }]);
    expect(r.python).toMatchObject([{ status: 'pass', algorithm: 'ed25519-sha256', domain: 'example.com' }]);
  });

  it('dual signature (Ed25519 + RSA): both pass in both verifiers', async () => {
    const signed = signMessage(compose(messages['plain text']!, fixedOptions(5)), [ed, rsa], NOW);
    const r = await bothVerifiers(signed.bytes, records(ed, rsa));
    expect(r.mailauth.map((x) => [x.algorithm, x.status])).toEqual([
      ['ed25519-sha256', 'pass'],
      ['rsa-sha256', 'pass'],
    ]);
    expect(r.python.map((x) => [x.algorithm, x.status])).toEqual([
      ['ed25519-sha256', 'pass'],
      ['rsa-sha256', 'pass'],
    ]);
  });

  it('the signature field: tags, t=, signed and over-signed headers, lines under 998 octets', () => {
    const input = messages['html + text + attachment, cc and reply-to, folded long subject']!;
    const signed = signMessage(compose(input, fixedOptions(6)), [rsa], NOW);
    const head = Buffer.from(signed.bytes).toString('latin1').split('\r\n\r\n')[0]!;
    const field = head.slice(0, head.indexOf('\r\nDate:'));
    const tags = Object.fromEntries(
      field
        .replace(/^DKIM-Signature:/, '')
        .replace(/\s+/g, '')
        .split(';')
        .map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]),
    );
    expect(tags).toMatchObject({
      v: '1',
      a: 'rsa-sha256',
      c: 'relaxed/relaxed',
      d: 'example.com',
      s: 'rsa2026',
    });
    expect(tags.t).toBe(String(NOW / 1000));
    expect(tags.h).toBe('from:to:cc:reply-to:subject:date:message-id:mime-version:content-type:from');
    for (const line of Buffer.from(signed.bytes).toString('latin1').split('\r\n')) {
      expect(line.length).toBeLessThanOrEqual(998);
    }
    expect(signed.size).toBe(signed.bytes.length);
  });

  it('a changed subject, body or an added From fails in both verifiers', async () => {
    const signed = Buffer.from(
      signMessage(compose(messages['plain text']!, fixedOptions(7)), [rsa], NOW).bytes,
    );
    const text = signed.toString('latin1');
    const tampered = {
      subject: text.replace('Subject: Contact form', 'Subject: Contact f0rm'),
      body: text.replace('it works.', 'it worked'),
      'second From': text.replace('\r\n\r\n', '\r\nFrom: attacker@example.net\r\n\r\n'),
    };
    for (const [what, t] of Object.entries(tampered)) {
      const r = await bothVerifiers(Buffer.from(t, 'latin1'), records(rsa));
      expect(r.mailauth[0]?.status, `mailauth, ${what}`).not.toBe('pass');
      expect(r.python[0]?.status, `python3-dkim, ${what}`).toBe('fail');
    }
  });
});

describe('relaxed canonicalization (RFC 6376 §3.4.2, §3.4.4 examples)', () => {
  it('headers: lower-case name, unfolded, runs of white space to one space, none around the colon', () => {
    expect(relaxedHeader('SubJect \t:  Hello\r\n \t  World  ')).toBe('subject:Hello World');
    // 0xA0 is a UTF-8 continuation octet here, not white space: kept.
    expect(relaxedHeader('Subject: \xc3\xa0 ')).toBe('subject:\xc3\xa0');
  });

  it('body: trailing white space and empty lines at the end removed; an empty body stays empty', () => {
    const c = (s: string) => relaxedBody(Buffer.from(s, 'latin1')).toString('latin1');
    expect(c(' C \r\nD \t E\r\n\r\n\r\n')).toBe(' C\r\nD E\r\n');
    expect(c('')).toBe('');
    expect(c('\r\n\r\n')).toBe('');
    expect(c('no final line break')).toBe('no final line break\r\n');
  });
});

describe('signing keys are checked once, errors name the field and never the key', () => {
  it.each([
    ['not a key', 'is not a readable PEM private key'],
    [pem(generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey), 'RSA key of 512 bits'],
    [pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), 'must be RSA or Ed25519 (got ec)'],
  ])('%#', (privateKey, message) => {
    let err: unknown;
    try {
      dkimSigner({ domain: 'example.com', selector: 's1', privateKey }, 'dkim[1]');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MimeError);
    expect((err as MimeError).field).toBe('dkim[1].privateKey');
    expect((err as MimeError).message).toContain(message);
    expect((err as MimeError).message).not.toContain('PRIVATE KEY');
  });

  it.each([
    ['domain', 'exa mple.com'],
    ['domain', 'bücher.example'],
    ['selector', 's1;x=1'],
  ])('%s %j is refused', (key, value) => {
    const input = { domain: 'example.com', selector: 's1', privateKey: edKey, [key]: value };
    expect(() => dkimSigner(input)).toThrow(expect.objectContaining({ field: `dkim.${key}` }));
  });
});

describe('signed mail through the real SMTP client arrives verifiable', () => {
  let srv: TestSmtpServer;
  beforeAll(async () => {
    srv = await startSmtpServer();
  });
  afterAll(() => srv.close());

  it('dot-stuffed on the wire, un-stuffed by smtp-server, the arrived bytes verify in both', async () => {
    const composed = compose(messages['lines starting with a dot (dot-stuffing is not signed)']!);
    const signed = signMessage(composed, [rsa, ed]);
    await sendMail(
      { host: '127.0.0.1', port: srv.port, ca: TEST_CA, auth: TEST_AUTH },
      { envelope: signed.envelope, content: signed.bytes },
    );
    const raw = srv.messages.at(-1)!.raw;
    expect(raw.toString('latin1')).toContain('\r\n..leading dots\r\n');
    const r = await bothVerifiers(raw, records(rsa, ed));
    expect(r.mailauth.map((x) => x.status)).toEqual(['pass', 'pass']);
    expect(r.python.map((x) => x.status)).toEqual(['pass', 'pass']);
  });
});
