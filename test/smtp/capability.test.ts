import { describe, expect, it } from 'vitest';
import { parseCapabilities } from '../../functions/smtp/capability.ts';
import { ReplyParser } from '../../functions/smtp/reply.ts';

const ehlo = (s: string) => new ReplyParser().push(new TextEncoder().encode(s))[0]!;

describe('parseCapabilities', () => {
  it('reads the usual extensions (Gmail-like)', () => {
    const c = parseCapabilities(
      ehlo(
        '250-smtp.gmail.com at your service\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n' +
          '250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n',
      ),
    );
    expect(c).toMatchObject({
      pipelining: true,
      chunking: true,
      startTls: true,
      smtpUtf8: true,
      eightBitMime: true,
      enhancedStatusCodes: true,
      binaryMime: false,
      size: 35882577,
      auth: [],
    });
  });

  it('reads AUTH mechanisms upper-cased, old AUTH= form too, and SIZE without a value', () => {
    const c = parseCapabilities(
      ehlo('250-mx\r\n250-auth plain login\r\n250-AUTH=XOAUTH2\r\n250-SIZE\r\n250 BINARYMIME\r\n'),
    );
    expect(c.auth).toEqual(['PLAIN', 'LOGIN', 'XOAUTH2']);
    expect(c.size).toBe(0);
    expect(c.binaryMime).toBe(true);
    expect(c.keywords.get('AUTH')).toEqual(['plain', 'login', 'XOAUTH2']);
  });

  it('a one-line EHLO reply has no extensions (SES-like minimal server)', () => {
    const c = parseCapabilities(ehlo('250 email-smtp.amazonaws.com\r\n'));
    expect(c.pipelining || c.chunking || c.startTls).toBe(false);
    expect(c.size).toBeUndefined();
  });
});
