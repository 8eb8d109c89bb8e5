/**
 * EHLO reply → `Capabilities` (RFC 5321 §4.1.1.1 and the extension RFCs). The first line is the server's
 * greeting name; each further line is `KEYWORD [params…]`. Old servers also write `AUTH=PLAIN LOGIN`.
 */
import type { Capabilities, Reply } from './types.ts';

export function parseCapabilities(reply: Reply): Capabilities {
  const keywords = new Map<string, string[]>();
  for (const line of reply.lines.slice(1)) {
    const parts = line.trim().split(/\s+/).filter(Boolean);
    const first = parts.shift();
    if (!first) continue;
    let keyword = first.toUpperCase();
    // `AUTH=PLAIN LOGIN` (pre-RFC 4954 servers)
    const eq = keyword.indexOf('=');
    if (eq > 0) {
      parts.unshift(first.slice(eq + 1));
      keyword = keyword.slice(0, eq);
    }
    const prev = keywords.get(keyword) ?? [];
    keywords.set(keyword, [...prev, ...parts.filter(Boolean)]);
  }
  const caps: Capabilities = {
    keywords,
    pipelining: keywords.has('PIPELINING'),
    chunking: keywords.has('CHUNKING'),
    binaryMime: keywords.has('BINARYMIME'),
    startTls: keywords.has('STARTTLS'),
    smtpUtf8: keywords.has('SMTPUTF8'),
    eightBitMime: keywords.has('8BITMIME'),
    enhancedStatusCodes: keywords.has('ENHANCEDSTATUSCODES'),
    auth: [...new Set((keywords.get('AUTH') ?? []).map((m) => m.toUpperCase()))],
  };
  const size = keywords.get('SIZE');
  if (size) {
    const n = Number(size[0] ?? '0');
    caps.size = Number.isSafeInteger(n) && n >= 0 ? n : 0;
  }
  return caps;
}
