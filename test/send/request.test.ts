import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAllowed, matchesAddressPattern } from '../../functions/send/allowlist.ts';
import { SendError } from '../../functions/send/errors.ts';
import {
  decodeBase64Strict,
  validateBatchEnvelope,
  validateSendRequest,
} from '../../functions/send/request.ts';
import { thrown } from '../support/fixtures.ts';

const limits = { maxRecipients: 3, maxBatch: 2, maxBodyBytes: 100, maxAttachmentBytes: 10 };
const base = { to: 'a@example.com', subject: 's', text: 't' };

const errorOf = (input: unknown) => thrown(() => validateSendRequest(input, limits), SendError);

describe('validateSendRequest', () => {
  it('accepts string or array addresses, parses display names, decodes attachments', () => {
    const v = validateSendRequest(
      {
        ...base,
        to: ['"Ann Lee" <ann@example.com>'],
        cc: 'c@example.com',
        attachments: [{ filename: 'a.bin', contentType: 'application/octet-stream', content: 'AAEC/w==' }],
      },
      limits,
    );
    expect(v.to).toEqual([{ name: 'Ann Lee', address: 'ann@example.com' }]);
    expect(v.cc[0]!.address).toBe('c@example.com');
    expect([...v.attachments[0]!.content]).toEqual([0, 1, 2, 255]);
  });

  it('collects every field error with stable codes', () => {
    const err = errorOf({ to: ['x', 'b@example.com\r\n'], subject: 1, html: undefined, extra: true });
    expect(err.code).toBe('validation_failed');
    expect(err.errors!.map((e) => `${e.field}:${e.code}`)).toEqual(
      expect.arrayContaining(['subject:invalid_type', 'extra:unknown_field']),
    );
    const err2 = errorOf({ to: ['x', 'b@example.com\r\n'], subject: 's' });
    expect(err2.errors!.map((e) => `${e.field}:${e.code}`)).toEqual(
      expect.arrayContaining(['to[0]:invalid_address', 'to[1]:header_injection', 'text:required']),
    );
  });

  it('size limits → payload_too_large; recipient count → validation_failed', () => {
    expect(errorOf({ ...base, text: 'x'.repeat(101) }).code).toBe('payload_too_large');
    expect(
      errorOf({
        ...base,
        attachments: [{ filename: 'a', contentType: 'text/plain', content: 'YWFhYWFhYWFhYWFh' }],
      }).code,
    ).toBe('payload_too_large');
    const many = errorOf({
      ...base,
      to: ['a@x.example', 'b@x.example'],
      bcc: ['c@x.example', 'd@x.example'],
    });
    expect(many.errors![0]).toMatchObject({ field: 'to', code: 'too_many_recipients' });
  });

  it('batch envelope: required, bounded by maxBatch', () => {
    expect(validateBatchEnvelope({ messages: [base] }, limits)).toHaveLength(1);
    expect(() => validateBatchEnvelope({ messages: [] }, limits)).toThrow(/messages/);
    expect(() => validateBatchEnvelope({ messages: [base, base, base] }, limits)).toThrow(/at most 2/);
    expect(() => validateBatchEnvelope({ messages: 'no' }, limits)).toThrow(SendError);
  });
});

describe('strict base64', () => {
  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const s = Buffer.from(bytes).toString('base64');
        expect([...decodeBase64Strict(s)!]).toEqual([...bytes]);
      }),
    );
  });

  it('refuses whitespace, missing padding, non-canonical padding bits, url-safe alphabet', () => {
    for (const s of ['YQ', 'YQ=', 'YR==', 'Y Q==', 'YQ==\n', 'YW\r\nFh', '-_8=', 'YQ===', '====']) {
      expect(decodeBase64Strict(s), s).toBeUndefined();
    }
    expect(decodeBase64Strict('')).toEqual(new Uint8Array());
  });
});

describe('address patterns', () => {
  it('match whole addresses case-insensitively; * is a wildcard', () => {
    expect(matchesAddressPattern('Bob@Example.com', '*@example.com')).toBe(true);
    expect(matchesAddressPattern('bob@sub.example.com', '*@example.com')).toBe(false);
    expect(matchesAddressPattern('bob@sub.example.com', '*@*.example.com')).toBe(true);
    expect(matchesAddressPattern('bob@example.com.evil.net', '*@example.com')).toBe(false);
    expect(matchesAddressPattern('a.b+c@example.com', 'a.b+c@example.com')).toBe(true);
    expect(matchesAddressPattern('axb@example.com', 'a.b@example.com')).toBe(false);
    expect(isAllowed('x@y.z', undefined)).toBe(true);
    expect(isAllowed('x@y.z', [])).toBe(false);
  });
});
