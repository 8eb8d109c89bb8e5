/**
 * What `smtp-send` prints: human text or one JSON object. Never a stack trace, never a secret, never the body.
 */
import type { MimeError } from '../mime/index.ts';
import { type ProviderHint, providerHint } from '../send/provider-hints.ts';
import type { SmtpError } from '../smtp/error.ts';
import type {
  Capabilities,
  RecipientResult,
  Reply,
  SessionStats,
  TlsInfo,
  TranscriptLine,
} from '../smtp/types.ts';
import { EXIT } from './usage-error.ts';

/** The parts of a verify/send result the CLI shows (all optional: printed when the client provides them). */
export interface SessionView {
  capabilities?: Capabilities;
  tls?: TlsInfo;
  roundTrips?: number;
  timings?: SessionStats['timings'];
  transcript?: TranscriptLine[];
}

export interface ServerView {
  host: string;
  port: number;
  security: string;
  user?: string;
}

/** Phases in session order, for the timings line. */
const PHASE_ORDER = [
  'connect',
  'tls',
  'greeting',
  'ehlo',
  'starttls',
  'auth',
  'mail',
  'rcpt',
  'data',
  'rset',
  'quit',
];

export function capabilitiesJson(c: Capabilities | undefined): Record<string, unknown> | undefined {
  if (!c) return undefined;
  const keywords: Record<string, string[]> = {};
  for (const [k, params] of c.keywords) keywords[k] = params;
  return {
    keywords,
    pipelining: c.pipelining,
    chunking: c.chunking,
    binaryMime: c.binaryMime,
    startTls: c.startTls,
    smtpUtf8: c.smtpUtf8,
    eightBitMime: c.eightBitMime,
    enhancedStatusCodes: c.enhancedStatusCodes,
    size: c.size,
    auth: c.auth,
  };
}

export function capabilityLine(c: Capabilities): string {
  const parts: string[] = [];
  for (const [k, params] of c.keywords) parts.push(params.length > 0 ? `${k} ${params.join(' ')}` : k);
  return parts.join(', ');
}

export function timingsLine(t: SessionStats['timings'] | undefined): string | undefined {
  if (!t) return undefined;
  const keys = Object.keys(t).sort((a, b) => rank(a) - rank(b));
  if (keys.length === 0) return undefined;
  const total = keys.reduce((sum, k) => sum + (t[k as keyof typeof t] ?? 0), 0);
  return `${keys.map((k) => `${k} ${fmtMs(t[k as keyof typeof t] ?? 0)}`).join(', ')} (total ${fmtMs(total)})`;
}

function rank(k: string): number {
  const i = PHASE_ORDER.indexOf(k);
  return i < 0 ? PHASE_ORDER.length : i;
}

function fmtMs(ms: number): string {
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

export function transcriptText(lines: TranscriptLine[] | undefined): string {
  if (!lines || lines.length === 0) return '';
  return `${lines.map((l) => `${String(Math.round(l.t)).padStart(6)} ms ${l.dir}: ${l.line}`).join('\n')}\n`;
}

export function sessionLines(server: ServerView, s: SessionView): string[] {
  const out: string[] = [];
  out.push(`Server:        ${server.host}:${server.port} (${server.security})`);
  if (s.tls) {
    out.push(`TLS:           ${s.tls.protocol ?? 'unknown protocol'}, ${s.tls.cipher}`);
    if (s.tls.subject !== undefined) out.push(`Certificate:   subject ${s.tls.subject}`);
    if (s.tls.issuer !== undefined) out.push(`               issuer  ${s.tls.issuer}`);
    if (s.tls.validTo !== undefined) out.push(`               valid to ${s.tls.validTo}`);
  } else {
    out.push('TLS:           none (clear text)');
  }
  if (s.capabilities) out.push(`Capabilities:  ${capabilityLine(s.capabilities)}`);
  const t = timingsLine(s.timings);
  if (t) out.push(`Timings:       ${t}`);
  if (s.roundTrips !== undefined) out.push(`Round trips:   ${s.roundTrips}`);
  return out;
}

export function recipientText(r: RecipientResult): string {
  return `${r.address} (${r.code}${r.enhancedCode ? ` ${r.enhancedCode}` : ''} ${oneLine(r.message)})`;
}

export function replyJson(r: Reply | undefined): Record<string, unknown> | undefined {
  if (!r) return undefined;
  return { code: r.code, enhancedCode: r.enhancedCode, text: r.text };
}

/** Collapses server text to one printable line. */
export function oneLine(s: string): string {
  return s.replace(/\r?\n/g, ' / ').replace(/[\x00-\x1f\x7f]/g, '?');
}

/** "error in auth: 535 5.7.8 Authentication failed — permanent, delivery not-sent". One line. */
export function smtpErrorLine(e: SmtpError): string {
  const parts: string[] = [`error in ${e.phase}:`];
  if (e.code !== undefined) parts.push(String(e.code));
  if (e.enhancedCode !== undefined) parts.push(e.enhancedCode);
  parts.push(oneLine(e.serverText ?? e.message));
  const tail = [`${e.transient ? 'transient' : 'permanent'}`, `delivery ${e.delivery}`];
  if (e.command !== undefined) tail.unshift(`after ${oneLine(e.command)}`);
  const hint = replyHint(e);
  return `${parts.join(' ')} — ${tail.join(', ')}${hint ? `\nhint (${hint.code}): ${hint.text}` : ''}`;
}

/** A provider hint for a server's refusal (provider-hints.ts). */
function replyHint(e: SmtpError): ProviderHint | undefined {
  return e.kind === 'reply' ? providerHint(e) : undefined;
}

/** The error as JSON; with `transcript` (the `--transcript` flag) the redacted transcript up to the failure. */
export function smtpErrorJson(e: SmtpError, transcript = false): Record<string, unknown> {
  return {
    type: 'smtp',
    phase: e.phase,
    kind: e.kind,
    command: e.command,
    code: e.code,
    enhancedCode: e.enhancedCode,
    serverText: e.serverText,
    message: oneLine(e.message),
    transient: e.transient,
    delivery: e.delivery,
    roundTrips: e.roundTrips,
    ...(replyHint(e) ? { hint: { code: replyHint(e)!.code, message: replyHint(e)!.text } } : {}),
    ...(transcript ? { transcript: e.transcript ?? [] } : {}),
  };
}

export function smtpExitCode(e: SmtpError): number {
  if (e.kind === 'usage') return EXIT.usage;
  if (e.kind === 'aborted') return EXIT.interrupted;
  return e.transient ? EXIT.transient : EXIT.permanent;
}

export function mimeErrorLine(e: MimeError): string {
  return `invalid message input (${e.field}, ${e.code}): ${oneLine(e.message)}`;
}
