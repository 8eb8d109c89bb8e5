/**
 * DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463), relaxed/relaxed canonicalization.
 * Signs the composed message exactly as it is transmitted (dot-stuffing is transport framing the receiver undoes,
 * so it is not part of what is signed). Several keys give several signatures (e.g. RSA + Ed25519, a dual
 * signature): each is computed over the same message and none covers another. Zero dependencies: node:crypto.
 */
import type { KeyObject } from 'node:crypto';
import { MimeError } from './error.ts';
import type { ComposedMessage } from './types.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

/** One signing key as configured: `d=`, `s=` and the private key (PEM, PKCS#8 or PKCS#1). */
export interface DkimKeyInput {
  domain: string;
  selector: string;
  privateKey: string;
}

/** A checked, ready-to-use signing key (parse once per secret version, sign many messages). */
export interface DkimSigner {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  key: KeyObject;
}

/**
 * Header fields signed when present, in this order; `From` is listed once more (over-signed) so a second From
 * cannot be added without breaking the signature.
 */
export const DKIM_SIGNED_HEADERS = [
  'from',
  'to',
  'cc',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'content-type',
] as const;

/** RFC 8301: verifiers must refuse RSA keys under 1024 bits; 2048 is what we recommend. */
const MIN_RSA_BITS = 1024;
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

function checkName(value: string, field: string): string {
  const labels = value.split('.');
  if (value.length > 253 || labels.some((l) => !LABEL.test(l))) {
    throw new MimeError(field, 'invalid_option', 'must be an ASCII domain name (A-labels)');
  }
  return value.toLowerCase();
}

/** Validates a configured key (field paths like `dkim[0].privateKey`); never echoes the key. */
export function dkimSigner(input: DkimKeyInput, field = 'dkim'): DkimSigner {
  const domain = checkName(input.domain, `${field}.domain`);
  const selector = checkName(input.selector, `${field}.selector`);
  let key: KeyObject;
  try {
    key = crypto().createPrivateKey(input.privateKey);
  } catch {
    throw new MimeError(`${field}.privateKey`, 'invalid_option', 'is not a readable PEM private key');
  }
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') return { domain, selector, algorithm: 'ed25519-sha256', key };
  if (type !== 'rsa') {
    throw new MimeError(`${field}.privateKey`, 'invalid_option', `must be RSA or Ed25519 (got ${type})`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new MimeError(
      `${field}.privateKey`,
      'invalid_option',
      `RSA key of ${bits} bits (at least 1024; 2048 recommended)`,
    );
  }
  return { domain, selector, algorithm: 'rsa-sha256', key };
}

/** The DNS TXT record to publish at `<selector>._domainkey.<domain>` for a signer's key. */
export function dkimDnsRecord(signer: DkimSigner): string {
  const pub = crypto().createPublicKey(signer.key);
  if (signer.algorithm === 'ed25519-sha256') {
    // RFC 8463 §4.2: the raw 32-byte public key (the last 32 octets of its SPKI DER).
    const spki = pub.export({ format: 'der', type: 'spki' });
    return `v=DKIM1; k=ed25519; p=${spki.subarray(spki.length - 32).toString('base64')}`;
  }
  return `v=DKIM1; k=rsa; p=${pub.export({ format: 'der', type: 'spki' }).toString('base64')}`;
}

/** Relaxed body canonicalization (RFC 6376 §3.4.4), on octets. */
export function relaxedBody(body: Buffer): Buffer {
  const text = body.toString('latin1');
  const lines = text.split('\r\n');
  // A body ending in CRLF splits into a last empty element: that is the final line ending, not an empty line.
  const out = lines.map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out.length === 0 ? Buffer.alloc(0) : Buffer.from(`${out.join('\r\n')}\r\n`, 'latin1');
}

/** Relaxed header canonicalization (RFC 6376 §3.4.2) of one field as written (folded, without its CRLF). */
export function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  const name = field
    .slice(0, colon)
    .replace(/[ \t]+$/, '')
    .toLowerCase();
  const value = field
    .slice(colon + 1)
    .replace(/\r\n(?=[ \t])/g, '')
    .replace(/[ \t]+/g, ' ')
    .replace(/^ | $/g, '');
  return `${name}:${value}`;
}

/** The header block's fields as written, each with its continuation lines, without the final CRLF. */
function headerFields(head: string): string[] {
  const fields: string[] = [];
  for (const line of head.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      fields[fields.length - 1] += `\r\n${line}`;
    } else if (line !== '') fields.push(line);
  }
  return fields;
}

/** Header fields named in `h=`, bottom-up for repeated names (RFC 6376 §5.4.2); absent ones sign nothing. */
function selectHeaders(fields: string[], names: readonly string[]): string[] {
  const byName = new Map<string, string[]>();
  for (const f of fields) {
    const n = f.slice(0, f.indexOf(':')).trim().toLowerCase();
    byName.set(n, [...(byName.get(n) ?? []), f]);
  }
  return names.flatMap((n) => {
    const list = byName.get(n);
    const f = list?.pop();
    return f === undefined ? [] : [relaxedHeader(f)];
  });
}

/** The message split once for every signer: header fields as written, and the body hash (`bh=`). */
interface Prepared {
  fields: string[];
  present: Set<string>;
  bodyHash: string;
}

function prepareMessage(message: Uint8Array): Prepared {
  const buf = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  const split = buf.indexOf('\r\n\r\n');
  const head = (split < 0 ? buf : buf.subarray(0, split)).toString('latin1');
  const body = split < 0 ? Buffer.alloc(0) : buf.subarray(split + 4);
  const fields = headerFields(head);
  const present = new Set(fields.map((f) => f.slice(0, f.indexOf(':')).trim().toLowerCase()));
  if (!present.has('from')) {
    throw new MimeError('from', 'invalid_option', 'a DKIM-signed message needs a From field');
  }
  return {
    fields,
    present,
    bodyHash: crypto().createHash('sha256').update(relaxedBody(body)).digest('base64'),
  };
}

function signatureField(m: Prepared, signer: DkimSigner, now: number): string {
  const names = [...DKIM_SIGNED_HEADERS.filter((n) => m.present.has(n)), 'from'];
  const tags = [
    'v=1',
    `a=${signer.algorithm}`,
    'c=relaxed/relaxed',
    `d=${signer.domain}`,
    `s=${signer.selector}`,
    `t=${Math.floor(now / 1000)}`,
    `h=${names.join(':')}`,
    `bh=${m.bodyHash}`,
  ];
  const unsigned = `DKIM-Signature: ${tags.join(';\r\n\t')};\r\n\tb=`;
  const data = [...selectHeaders(m.fields, names), relaxedHeader(unsigned)].join('\r\n');
  const input = Buffer.from(data, 'latin1');
  const b =
    signer.algorithm === 'rsa-sha256'
      ? crypto().sign('sha256', input, signer.key)
      : crypto().sign(null, crypto().createHash('sha256').update(input).digest(), signer.key);
  return unsigned + b.toString('base64');
}

/** The composed message with one DKIM-Signature field per signer prepended (the bytes to transmit). */
export function signMessage(
  composed: ComposedMessage,
  signers: readonly DkimSigner[],
  now: number = Date.now(),
): ComposedMessage {
  if (signers.length === 0) return composed;
  const m = prepareMessage(composed.bytes);
  const fields = signers.map((s) => `${signatureField(m, s, now)}\r\n`).join('');
  const buf = Buffer.concat([Buffer.from(fields, 'latin1'), composed.bytes]);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  return { ...composed, bytes, size: bytes.length };
}
