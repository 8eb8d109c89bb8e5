/**
 * Streaming SMTP reply parser (RFC 5321 §4.2). Bytes in, complete replies out; no I/O.
 *
 * - multi-line replies (`250-…` until `250 …`), bare `250` with no text;
 * - text decoded as UTF-8 per complete line, so a character split across two reads is intact;
 * - bounded: a line over 4 KiB, a reply over 64 KiB or over 1000 lines is a protocol error
 *   (a server cannot make us buffer without limit);
 * - a multi-line reply whose lines carry different codes is a protocol error;
 * - RFC 3463 enhanced status code (`2.1.0`) split off the text when its class matches the reply code.
 */
import type { Reply } from './types.ts';

export const MAX_LINE_OCTETS = 4096;
export const MAX_REPLY_OCTETS = 64 * 1024;
export const MAX_REPLY_LINES = 1000;

/**
 * Thrown by the parser; the transport turns it into an `SmtpError` with the phase it was in. `before`: the
 * replies completed by the same `push` before the bad line (they were said, and count).
 */
export class ReplyProtocolError extends Error {
  override readonly name = 'ReplyProtocolError';
  before: Reply[] = [];
}

const LF = 0x0a;
const CR = 0x0d;
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?: +|$)/;
const decoder = new TextDecoder('utf-8');

export class ReplyParser {
  /** Bytes of the current, incomplete line. */
  private partial: Uint8Array[] = [];
  private partialOctets = 0;
  /** Lines of the current, incomplete multi-line reply. */
  private lines: string[] = [];
  private code = 0;
  private replyOctets = 0;

  /** Octets received but not yet part of a complete reply (used to detect bytes injected after STARTTLS). */
  get buffered(): number {
    return this.partialOctets + this.replyOctets;
  }

  /**
   * Feed bytes; returns every reply completed by them (possibly none). Throws `ReplyProtocolError`, carrying the
   * replies completed before the bad line in `before`.
   */
  push(chunk: Uint8Array): Reply[] {
    const out: Reply[] = [];
    let start = 0;
    try {
      while (start < chunk.length) {
        const lf = chunk.indexOf(LF, start);
        if (lf === -1) {
          this.addPartial(chunk.subarray(start));
          break;
        }
        this.addPartial(chunk.subarray(start, lf));
        start = lf + 1;
        const line = this.takeLine();
        const reply = this.onLine(line);
        if (reply) out.push(reply);
      }
    } catch (e) {
      if (e instanceof ReplyProtocolError) e.before = out;
      throw e;
    }
    return out;
  }

  private addPartial(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.partialOctets += bytes.length;
    if (this.partialOctets > MAX_LINE_OCTETS) {
      throw new ReplyProtocolError(`reply line longer than ${MAX_LINE_OCTETS} octets`);
    }
    // Copy: the caller may reuse its buffer.
    this.partial.push(Uint8Array.from(bytes));
  }

  private takeLine(): Uint8Array {
    let bytes: Uint8Array;
    if (this.partial.length === 1) bytes = this.partial[0]!;
    else {
      bytes = new Uint8Array(this.partialOctets);
      let o = 0;
      for (const p of this.partial) {
        bytes.set(p, o);
        o += p.length;
      }
    }
    this.partial = [];
    const octets = this.partialOctets;
    this.partialOctets = 0;
    this.replyOctets += octets + 1;
    return bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.subarray(0, bytes.length - 1) : bytes;
  }

  private onLine(bytes: Uint8Array): Reply | undefined {
    const line = decoder.decode(bytes);
    const m = /^([2-5][0-5]\d)([ -]|$)/.exec(line);
    if (!m) throw new ReplyProtocolError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const code = Number(m[1]);
    if (this.lines.length > 0 && code !== this.code) {
      throw new ReplyProtocolError(
        `reply code changed inside a multi-line reply (${this.code} then ${code})`,
      );
    }
    this.code = code;
    this.lines.push(line.slice(4));
    if (this.replyOctets > MAX_REPLY_OCTETS)
      throw new ReplyProtocolError(`reply longer than ${MAX_REPLY_OCTETS} octets`);
    if (this.lines.length > MAX_REPLY_LINES)
      throw new ReplyProtocolError(`reply longer than ${MAX_REPLY_LINES} lines`);
    if (m[2] === '-') return undefined;
    const reply = makeReply(code, this.lines);
    this.lines = [];
    this.code = 0;
    this.replyOctets = 0;
    return reply;
  }
}

/** Build a `Reply`, splitting off an enhanced status code whose class matches the reply's. */
export function makeReply(code: number, lines: string[]): Reply {
  const first = lines[0] ?? '';
  const m = ENHANCED.exec(first);
  const reply: Reply = { code, lines, text: lines.join('\n') };
  if (m && Number(m[1]) === Math.floor(code / 100)) {
    reply.enhancedCode = `${m[1]}.${m[2]}.${m[3]}`;
    reply.text = [first.slice(m[0].length), ...lines.slice(1)].join('\n');
  }
  return reply;
}

/** Render a reply for transcripts / messages: `550 5.1.1 text`. */
export function formatReply(reply: Reply): string {
  return reply.lines.map((l, i) => `${reply.code}${i === reply.lines.length - 1 ? ' ' : '-'}${l}`).join('\n');
}

const QUEUE_ID = [
  /\bOK\s+\d+\s+(\S+)\s+-\s+gsmtp/i,
  /queued as ([A-Za-z0-9._\-@/+=]+)/i,
  /\bid=([A-Za-z0-9._\-@/+=]+)/i,
  /\bOK:?\s+<?([A-Za-z0-9._\-@/+=]{6,})>?/i,
];

/** Best-effort queue id from the final reply ("queued as X", "id=X", "OK X"). */
export function parseQueueId(reply: Reply): string | undefined {
  for (const re of QUEUE_ID) {
    const m = re.exec(reply.text);
    if (m) return m[1];
  }
  return undefined;
}
