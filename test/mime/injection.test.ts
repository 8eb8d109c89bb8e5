/**
 * Header injection: CR, LF or NUL in any header-bound input is a MimeError naming the field, and
 * nothing is composed (compose throws before returning bytes).
 */
import { describe, expect, it } from 'vitest';
import { compose, type MessageInput, MimeError } from '../../functions/mime/index.ts';
import { fixedOptions } from './support.ts';

const base = (): MessageInput => ({
  from: 'Sender <sender@example.com>',
  to: ['one@example.com', 'two@example.com', 'three@example.com'],
  subject: 'Hello',
  text: 'body',
});

type Case = [field: string, make: (bad: string) => MessageInput];

const CASES: Case[] = [
  ['subject', (bad) => ({ ...base(), subject: `Hi${bad}Bcc: victim@example.com` })],
  ['from', (bad) => ({ ...base(), from: `Sender${bad} <sender@example.com>` })],
  ['from', (bad) => ({ ...base(), from: `sender@example.com${bad}` })],
  [
    'from.name',
    (bad) => ({ ...base(), from: { name: `Evil${bad}Bcc: x@example.com`, address: 'a@example.com' } }),
  ],
  ['from.address', (bad) => ({ ...base(), from: { address: `a@example.com${bad}` } })],
  [
    'to[2]',
    (bad) => ({
      ...base(),
      to: ['a@example.com', 'b@example.com', `c@example.com>${bad}Bcc: d@example.com`],
    }),
  ],
  ['to', (bad) => ({ ...base(), to: `Name${bad} <a@example.com>` })],
  ['cc[0].name', (bad) => ({ ...base(), cc: [{ name: `N${bad}`, address: 'c@example.com' }] })],
  ['bcc[1]', (bad) => ({ ...base(), bcc: ['b@example.com', `x${bad}@example.com`] })],
  ['replyTo', (bad) => ({ ...base(), replyTo: `r@example.com${bad}` })],
  ['replyTo[0].address', (bad) => ({ ...base(), replyTo: [{ address: `r${bad}@example.com` }] })],
  ['messageIdDomain', (bad) => ({ ...base(), messageIdDomain: `example.com${bad}` })],
  ['headers.X-Foo', (bad) => ({ ...base(), headers: { 'X-Foo': `v${bad}Bcc: x@example.com` } })],
  [
    'headers.List-Unsubscribe',
    (bad) => ({ ...base(), headers: { 'List-Unsubscribe': `<https://e.x/>${bad}` } }),
  ],
  [
    'attachments[0].filename',
    (bad) => ({ ...base(), attachments: [{ filename: `a${bad}.txt`, content: new Uint8Array([1]) }] }),
  ],
  [
    'attachments[1].contentType',
    (bad) => ({
      ...base(),
      attachments: [
        { filename: 'ok.txt', content: new Uint8Array([1]) },
        { filename: 'b.txt', contentType: `text/plain${bad}X-Evil: 1`, content: new Uint8Array([1]) },
      ],
    }),
  ],
  [
    'attachments[0].contentId',
    (bad) => ({
      ...base(),
      attachments: [{ filename: 'a.png', contentId: `id${bad}@x`, content: new Uint8Array([1]) }],
    }),
  ],
];

describe('header injection is refused with the field named', () => {
  for (const bad of ['\r\n', '\r', '\n', '\0']) {
    for (const [field, make] of CASES) {
      it(`${JSON.stringify(bad)} in ${field}`, () => {
        let err: unknown;
        let result: unknown;
        try {
          result = compose(make(bad), fixedOptions());
        } catch (e) {
          err = e;
        }
        expect(result).toBeUndefined();
        expect(err).toBeInstanceOf(MimeError);
        expect((err as MimeError).field).toBe(field);
        expect((err as MimeError).code).toBe('header_injection');
        expect((err as MimeError).message).not.toMatch(/[\r\n\0]/);
      });
    }
  }

  it('a header name with CR/LF/NUL is refused and the error message carries no line break', () => {
    for (const bad of ['\r\n', '\n', '\0']) {
      const err = (() => {
        try {
          compose({ ...base(), headers: { [`X-A${bad}Bcc`]: 'v' } }, fixedOptions());
        } catch (e) {
          return e as MimeError;
        }
      })();
      expect(err).toBeInstanceOf(MimeError);
      expect(err!.code).toBe('header_injection');
      expect(err!.field.startsWith('headers[')).toBe(true);
      expect(err!.field).not.toMatch(/[\r\n\0]/);
      expect(err!.message).not.toMatch(/[\r\n\0]/);
    }
  });

  it('line breaks in the body are fine (they are content, normalised to CRLF)', () => {
    expect(() =>
      compose({ ...base(), text: 'a\r\nb\rc\nd\0e', html: '<p>\n</p>' }, fixedOptions()),
    ).not.toThrow();
  });
});
