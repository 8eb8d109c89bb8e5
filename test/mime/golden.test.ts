/**
 * Golden files: with a fixed `random` and `now`, composing gives exactly these bytes.
 * Regenerate after an intended change with `UPDATE_GOLDEN=1 npx vitest run test/mime/golden.test.ts`
 * and review the diff.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compose, type MessageInput } from '../../functions/mime/index.ts';
import { checkWire, fixedOptions, parse } from './support.ts';

const DIR = join(import.meta.dirname, 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

/** A small PNG-like byte string (not a real image; bytes are what matter). */
const PNG = new Uint8Array([
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52,
]);

const CASES: Record<string, MessageInput> = {
  'plain-ascii': {
    from: 'Example Sender <sender@example.com>',
    to: 'recipient@example.net',
    subject: 'Your order has shipped',
    text: 'Hello,\n\nYour order 1234 has shipped.\n.\nFrom the warehouse team\n',
  },
  'utf8-subject-names': {
    from: { name: 'Jöhn Dœ', address: 'john@bücher.example' },
    replyTo: '"Support, Team" <support@example.com>',
    to: [{ name: '山田 太郎', address: 'taro@example.jp' }, 'Zoë <zoe@example.com>'],
    cc: { name: 'محمد', address: 'mohammed@example.com' },
    bcc: 'audit@example.com',
    subject: 'Grüße aus Köln — 会議の議事録 📎 and a long tail to force folding of the subject line',
    text: 'Grüße!\nLigne avec accents : éàüß.\n',
    headers: { 'X-Campaign': 'Été 2026', 'List-Unsubscribe': '<https://example.com/u/1>' },
  },
  'text-and-html': {
    from: 'news@example.com',
    to: 'reader@example.com',
    subject: 'Newsletter',
    text: 'Plain version with a long line: ' + 'lorem ipsum '.repeat(12) + '\nand trailing space \n',
    html:
      '<!doctype html><html><body><h1>Newsletter</h1><p>' + 'lorem ipsum '.repeat(12) + '</p></body></html>',
    headers: { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click', 'In-Reply-To': '<prev@example.com>' },
  },
  'attachments-unicode-filenames': {
    from: 'a@example.com',
    to: 'b@example.com',
    subject: 'Files',
    text: 'Two files attached.',
    attachments: [
      {
        filename: 'Rechnung März 2026 — Übersicht und Details für die Buchhaltung.pdf',
        content: new Uint8Array(100).fill(7),
      },
      {
        filename: 'data "quoted".csv',
        contentType: 'text/csv; charset=utf-8',
        content: Buffer.from('a,b\n1,2\n'),
      },
      { filename: '報告書.txt', content: Buffer.from('日本語\n') },
    ],
  },
  'inline-image-related': {
    from: 'a@example.com',
    to: 'b@example.com',
    subject: 'Inline image',
    text: 'See the logo.',
    html: '<p>Logo: <img src="cid:logo@example.com" alt="logo"></p>',
    attachments: [
      { filename: 'logo.png', contentId: 'logo@example.com', content: PNG },
      { filename: 'terms.pdf', content: new Uint8Array([37, 80, 68, 70]) },
    ],
  },
};

describe('golden files', () => {
  for (const [name, input] of Object.entries(CASES)) {
    it(name, async () => {
      const m = compose(input, fixedOptions(2026));
      const file = join(DIR, `${name}.eml`);
      if (UPDATE || !existsSync(file)) writeFileSync(file, m.bytes);
      const golden = readFileSync(file);
      expect(Buffer.from(m.bytes).toString('latin1')).toBe(golden.toString('latin1'));
      expect(checkWire(m.bytes).problems).toEqual([]);
      // The golden bytes themselves parse to what was given.
      const p = await parse(golden);
      expect(p.subject).toBe(input.subject);
    });
  }

  it('golden files exist in the repository (not only created by this run)', () => {
    if (UPDATE) return;
    for (const name of Object.keys(CASES)) expect(existsSync(join(DIR, `${name}.eml`))).toBe(true);
  });
});
