/** Address parsing and validation (RFC 5321 mailbox syntax, RFC 5322 name-addr, IDNA, RFC 6531). */
import { describe, expect, it } from 'vitest';
import { compose, MimeError, parseAddressList, parseMailbox } from '../../functions/mime/index.ts';
import { fixedOptions } from './support.ts';

function errorOf(fn: () => unknown): MimeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof MimeError) return e;
    throw e;
  }
  throw new Error('expected a MimeError');
}

describe('parseMailbox', () => {
  it.each([
    ['a@example.com', { address: 'a@example.com' }],
    ['  <a@example.com>  ', { address: 'a@example.com' }],
    ['John Doe <john@example.com>', { name: 'John Doe', address: 'john@example.com' }],
    ['"Doe, John" <john@example.com>', { name: 'Doe, John', address: 'john@example.com' }],
    ['"Say \\"hi\\"" <a@example.com>', { name: 'Say "hi"', address: 'a@example.com' }],
    ['Jöhn <j@Example.COM>', { name: 'Jöhn', address: 'j@example.com' }],
    ['a@example.com (Comment Name)', { name: 'Comment Name', address: 'a@example.com' }],
    ['user+tag@sub.example.co.uk', { address: 'user+tag@sub.example.co.uk' }],
    ["o'brien@example.com", { address: "o'brien@example.com" }],
    ['"john doe"@example.com', { address: '"john doe"@example.com' }],
    ['"plain"@example.com', { address: 'plain@example.com' }],
    ['"a\\"b"@example.com', { address: '"a\\"b"@example.com' }],
    ['user@[192.0.2.1]', { address: 'user@[192.0.2.1]' }],
    ['user@[IPv6:2001:DB8::1]', { address: 'user@[IPv6:2001:db8::1]' }],
    ['user@bücher.example', { address: 'user@xn--bcher-kva.example' }],
    ['user@例え.テスト', { address: 'user@xn--r8jz45g.xn--zckzah' }],
    ['Name <user@xn--bcher-kva.example>', { name: 'Name', address: 'user@xn--bcher-kva.example' }],
    ['δοκιμή@παράδειγμα.δοκιμή', { address: 'δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp' }],
    ['<a@localhost>', { address: 'a@localhost' }],
  ])('%s', (input, expected) => {
    expect(parseMailbox(input)).toEqual(expected);
  });

  it.each([
    ['', 'invalid_address'],
    ['plainaddress', 'invalid_address'],
    ['@example.com', 'invalid_address'],
    ['a@', 'invalid_domain'],
    ['a..b@example.com', 'invalid_address'],
    ['.a@example.com', 'invalid_address'],
    ['a.@example.com', 'invalid_address'],
    ['a b@example.com', 'invalid_address'],
    ['a@exa mple.com', 'invalid_domain'],
    ['a@-example.com', 'invalid_domain'],
    ['a@example-.com', 'invalid_domain'],
    ['a@exa_mple.com', 'invalid_domain'],
    ['a@example..com', 'invalid_domain'],
    ['a@1.2.3.4', 'invalid_domain'],
    ['a@[1.2.3.999]', 'invalid_domain'],
    ['a@[IPv6:zz::1]', 'invalid_domain'],
    ['a@[not-an-ip]', 'invalid_domain'],
    [`${'x'.repeat(65)}@example.com`, 'address_too_long'],
    [`a@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.${'e'.repeat(60)}.com`, 'invalid_domain'],
    [`${'x'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(60)}.com`, 'address_too_long'],
    [`a@${'b'.repeat(64)}.com`, 'invalid_domain'],
    ['Name <a@example.com', 'invalid_address'],
    ['"unterminated <a@example.com>', 'invalid_address'],
    ['a@b@example.com', 'invalid_address'],
  ])('refuses %s (%s)', (input, code) => {
    const err = errorOf(() => parseMailbox(input, 'to[3]'));
    expect(err.code).toBe(code);
    expect(err.field).toBe('to[3]');
  });

  it('accepts exactly 64 octets of local part and 254 of address', () => {
    const local = 'x'.repeat(64);
    const domain = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.com`;
    expect(`${local}@${domain}`.length).toBe(254);
    expect(parseMailbox(`${local}@${domain}`).address).toBe(`${local}@${domain}`);
  });
});

describe('parseAddressList', () => {
  it('splits at commas and semicolons outside quotes, comments and brackets', () => {
    expect(
      parseAddressList(
        '"Doe, John" <j@example.com>, a@example.com; B (x, y) <b@example.com>, , c@[192.0.2.1]',
      ),
    ).toEqual([
      { name: 'Doe, John', address: 'j@example.com' },
      { address: 'a@example.com' },
      { name: 'B (x, y)', address: 'b@example.com' },
      { address: 'c@[192.0.2.1]' },
    ]);
  });

  it('names the element that failed', () => {
    const err = errorOf(() => parseAddressList('a@example.com, nope', 'to'));
    expect(err.field).toBe('to[1]');
  });
});

describe('SMTPUTF8 (non-ASCII local parts)', () => {
  const input = { from: 'a@example.com', to: 'δοκιμή@example.com', subject: 'Grüße', text: 'x' };

  it('unknown server support: allowed, flagged for the client', () => {
    const m = compose(input, fixedOptions());
    expect(m.smtpUtf8).toBe(true);
    expect(m.envelope.to).toEqual(['δοκιμή@example.com']);
    // The subject still goes as an encoded word; only the address is raw UTF-8.
    expect(Buffer.from(m.bytes).toString()).toMatch(/^Subject: =\?UTF-8\?/m);
  });

  it('server without SMTPUTF8: refused naming the field', () => {
    const err = errorOf(() => compose(input, fixedOptions(1, { smtpUtf8: false })));
    expect(err.code).toBe('smtputf8_required');
    expect(err.field).toBe('to');
  });

  it('server with SMTPUTF8: headers raw UTF-8', () => {
    const m = compose(input, fixedOptions(1, { smtpUtf8: true }));
    expect(m.smtpUtf8).toBe(true);
    expect(m.eightBit).toBe(true);
    expect(Buffer.from(m.bytes).toString()).toMatch(/^Subject: Grüße\r$/m);
  });

  it('ASCII addresses with smtpUtf8 allowed but not needed: flag stays false', () => {
    const m = compose(
      { ...input, to: 'b@example.com', subject: 'plain' },
      fixedOptions(1, { smtpUtf8: true }),
    );
    expect(m.smtpUtf8).toBe(false);
    expect(m.eightBit).toBe(false);
  });
});

describe('message fields', () => {
  const ok = { from: 'a@example.com', to: 'b@example.com', subject: 's', text: 'x' };
  it('needs a recipient', () => {
    const err = errorOf(() => compose({ from: 'a@example.com', subject: 's' }, fixedOptions()));
    expect(err).toMatchObject({ field: 'to', code: 'missing_recipient' });
  });

  it('Message-ID at the From domain or messageIdDomain; Date from now()', () => {
    const m = compose(ok, fixedOptions());
    expect(m.messageId).toMatch(/^<[0-9a-f]{32}@example\.com>$/);
    expect(m.headers[0]).toEqual(['Date', 'Thu, 26 Nov 2026 04:05:06 +0000']);
    const m2 = compose({ ...ok, messageIdDomain: 'Mail.Bücher.example' }, fixedOptions());
    expect(m2.messageId).toMatch(/@mail\.xn--bcher-kva\.example>$/);
    const m3 = compose({ ...ok, date: new Date(Date.UTC(2001, 0, 2, 3, 4, 5)) }, fixedOptions());
    expect(m3.headers[0]).toEqual(['Date', 'Tue, 2 Jan 2001 03:04:05 +0000']);
  });

  it('defaults: crypto random Message-ID and boundaries, current time', () => {
    const before = Date.now();
    const a = compose({ ...ok, html: '<p>x</p>' });
    const b = compose({ ...ok, html: '<p>x</p>' });
    expect(a.messageId).not.toBe(b.messageId);
    expect(a.headers.find(([n]) => n === 'Content-Type')![1]).not.toBe(
      b.headers.find(([n]) => n === 'Content-Type')![1],
    );
    const date = Date.parse(a.headers[0]![1]);
    expect(date).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(date).toBeLessThanOrEqual(Date.now());
  });

  it('refuses an invalid date', () => {
    expect(errorOf(() => compose({ ...ok, date: new Date(Number.NaN) }))).toMatchObject({ field: 'date' });
  });

  it.each([
    ['Content-Type', 'structural_header'],
    ['content-transfer-encoding', 'structural_header'],
    ['MIME-Version', 'structural_header'],
    ['Bcc', 'structural_header'],
    ['From', 'structural_header'],
    ['to', 'structural_header'],
    ['Date', 'structural_header'],
    ['Message-ID', 'structural_header'],
    ['Subject', 'structural_header'],
    ['Received', 'structural_header'],
    ['Return-Path', 'structural_header'],
    ['DKIM-Signature', 'structural_header'],
    ['Sender', 'structural_header'],
    ['Resent-To', 'structural_header'],
    ['Foo', 'header_not_allowed'],
    ['X Space', 'invalid_header_name'],
    ['X:Colon', 'invalid_header_name'],
    ['X-Ümlaut', 'invalid_header_name'],
    ['', 'invalid_header_name'],
  ])('extra header %s is refused (%s)', (name, code) => {
    const err = errorOf(() => compose({ ...ok, headers: { [name]: 'v' } }, fixedOptions()));
    expect(err.code).toBe(code);
    expect(err.field.startsWith('headers')).toBe(true);
  });

  it('the same extra header twice (differing in case) is refused', () => {
    expect(
      errorOf(() =>
        compose({ ...ok, headers: { 'List-Id': '<a.example.com>', 'list-id': '<b.example.com>' } }),
      ),
    ).toMatchObject({ field: 'headers.list-id', code: 'duplicate_header' });
  });

  it('structured extra headers refuse non-ASCII unless SMTPUTF8; message ids are validated', () => {
    expect(
      errorOf(() => compose({ ...ok, headers: { 'List-Id': 'Ünï <list.example.com>' } }, fixedOptions())),
    ).toMatchObject({ field: 'headers.List-Id', code: 'non_ascii_structured' });
    expect(
      compose(
        { ...ok, headers: { 'List-Id': 'Ünï <list.example.com>' } },
        fixedOptions(1, { smtpUtf8: true }),
      ).smtpUtf8,
    ).toBe(true);
    expect(
      errorOf(() => compose({ ...ok, headers: { 'In-Reply-To': 'not an id' } }, fixedOptions())),
    ).toMatchObject({ field: 'headers.In-Reply-To', code: 'invalid_header_value' });
  });

  it('attachment fields are validated with their path', () => {
    const att = (extra: object) => ({
      ...ok,
      attachments: [{ filename: 'a.txt', content: new Uint8Array(1), ...extra }],
    });
    expect(errorOf(() => compose(att({ contentType: 'nonsense' })))).toMatchObject({
      field: 'attachments[0].contentType',
      code: 'invalid_content_type',
    });
    expect(errorOf(() => compose(att({ contentType: 'multipart/mixed' })))).toMatchObject({
      code: 'invalid_content_type',
    });
    expect(errorOf(() => compose(att({ contentId: 'has space' })))).toMatchObject({
      field: 'attachments[0].contentId',
      code: 'invalid_content_id',
    });
    expect(errorOf(() => compose(att({ filename: ' ' })))).toMatchObject({
      field: 'attachments[0].filename',
      code: 'invalid_filename',
    });
    expect(errorOf(() => compose(att({ content: 'text' })))).toMatchObject({
      field: 'attachments[0].content',
    });
    // A content type with parameters is taken as given (the file name is added to it).
    expect(
      Buffer.from(compose(att({ contentType: 'text/csv; charset="utf-8"' })).bytes).toString(),
    ).toContain('\r\nContent-Type: text/csv; charset="utf-8"; name="a.txt"\r\n');
    const cid = compose(att({ contentId: '<logo@example.com>' }));
    expect(Buffer.from(cid.bytes).toString()).toContain('\r\nContent-ID: <logo@example.com>\r\n');
  });

  it('refuses lone surrogates instead of replacing them', () => {
    expect(errorOf(() => compose({ ...ok, subject: 'a\ud800b' }))).toMatchObject({
      field: 'subject',
      code: 'invalid_unicode',
    });
    expect(errorOf(() => compose({ ...ok, text: '\udc00' }))).toMatchObject({
      field: 'text',
      code: 'invalid_unicode',
    });
  });
});
