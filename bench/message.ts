/**
 * The benchmark message: the same RFC 5322 bytes are handed to both clients (nodemailer as `raw`),
 * so only the SMTP conversation differs. About 2 KB of 7-bit text, one recipient.
 */
export const BENCH_FROM = 'noreply@example.com';

export interface BenchMessage {
  envelope: { from: string; to: string[] };
  content: Uint8Array;
}

const paragraph =
  'This message is sent by the benchmark harness. It is plain 7-bit text so that every client ' +
  'sends the same bytes without re-encoding them.';

export function benchMessage(index = 0): BenchMessage {
  const to = `rcpt${index}@example.com`;
  const lines = [
    `From: Bench <${BENCH_FROM}>`,
    `To: <${to}>`,
    `Subject: Benchmark message ${index}`,
    'Date: Thu, 26 Nov 2026 04:00:00 +0000',
    `Message-ID: <bench-${index}@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
  ];
  for (let i = 0; i < 14; i++) lines.push(`${i + 1}. ${paragraph}`);
  lines.push('.leading dot line (must be dot-stuffed in DATA)', '');
  return { envelope: { from: BENCH_FROM, to: [to] }, content: new TextEncoder().encode(lines.join('\r\n')) };
}
