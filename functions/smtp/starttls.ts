/**
 * STARTTLS (RFC 3207) — and the TLS handshake of implicit TLS (RFC 8314), which is the same thing without the
 * `STARTTLS` command in front.
 *
 * Security rules enforced here:
 * - certificates are ALWAYS verified (`rejectUnauthorized` is never turned off); an extra CA from the caller is
 *   added to Node's default roots, never replacing them;
 * - the host name (or IP) is checked against the certificate; SNI is sent only for host names, not IPs;
 * - TLS 1.2 is the minimum;
 * - bytes that arrive after the `220` to STARTTLS and before the handshake are an attack (STARTTLS command
 *   injection): `Transport.readReply({ detachAfter: true })` stops reading right after the 220 and fails if anything
 *   else is already buffered; anything arriving later is fed to the TLS layer and breaks the handshake.
 * - after the upgrade the caller forgets the capabilities and sends EHLO again (`Session.tlsEstablished()`).
 */
import { isIP } from 'node:net';
import type tls from 'node:tls';
import { abortError, SmtpError } from './error.ts';
import type { Transport } from './transport.ts';
import type { Phase, TlsInfo } from './types.ts';

export interface TlsParams {
  host: string;
  /** Name to verify and send as SNI; default `host`. */
  servername?: string;
  /** Extra trusted CAs (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
  timeoutMs: number;
  timeoutMessage?: string;
  /** 'starttls' for the upgrade, 'connect' for implicit TLS. */
  phase: Phase;
  /** Aborting destroys the TLS socket at once. */
  signal?: AbortSignal | undefined;
}

type Tls = typeof import('node:tls');
let tlsLoading: Promise<Tls> | undefined;

/**
 * node:tls, loaded at the first handshake, not at import: a cold start's init does not pay for it (with node:http(s),
 * ~1.5 ms of init CPU measured with the bundled handler); the first handshake comes after init.
 */
function loadTls(): Promise<Tls> {
  tlsLoading ??= import('node:tls');
  return tlsLoading;
}

/** The `tls.connect` options for a socket we already hold. */
export async function tlsConnectOptions(
  socket: import('node:net').Socket,
  p: TlsParams,
): Promise<tls.ConnectionOptions> {
  const name = p.servername ?? p.host;
  const opts: tls.ConnectionOptions = {
    socket,
    host: name, // used by checkServerIdentity
    minVersion: 'TLSv1.2',
    rejectUnauthorized: true,
  };
  if (isIP(name) === 0) opts.servername = name; // SNI only for names (RFC 6066)
  if (p.ca !== undefined) opts.secureContext = await contextWithExtraCa(p.ca);
  return opts;
}

/** Secure contexts for "default roots + extra CA", built once per distinct CA (a handful per process at most). */
const contexts = new Map<string, tls.SecureContext>();
const MAX_CONTEXTS = 8;

/**
 * Node's default roots plus the caller's CA, as a reusable `SecureContext`. Building a trust store parses ~150 root
 * certificates (tens of ms of CPU), so it is done once per distinct `ca` value, not once per connection. The TLS
 * floor lives in the context because `tls.connect` ignores `minVersion` when a `secureContext` is given.
 */
export async function contextWithExtraCa(
  ca: string | Buffer | Array<string | Buffer>,
): Promise<tls.SecureContext> {
  const tls = await loadTls();
  const extra = Array.isArray(ca) ? ca : [ca];
  const key = extra.map((c) => (typeof c === 'string' ? c : c.toString('latin1'))).join('\0');
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = tls.createSecureContext({ ca: [...tls.rootCertificates, ...extra], minVersion: 'TLSv1.2' });
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value as string);
    contexts.set(key, ctx);
  }
  return ctx;
}

/**
 * Run the TLS handshake over the transport's socket and make the transport read/write through TLS.
 * The transport must have stopped reading (`pauseReading()` or a `detachAfter` read).
 */
export async function upgradeToTls(transport: Transport, p: TlsParams): Promise<TlsInfo> {
  const raw = transport.socket as import('node:net').Socket;
  const [tls, options] = await Promise.all([loadTls(), tlsConnectOptions(raw, p)]);
  return new Promise<TlsInfo>((resolve, reject) => {
    const secure = tls.connect(options);
    secure.on('error', () => {}); // late errors after a failure must not crash the process
    const fail = (err: SmtpError) => {
      cleanup();
      secure.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(
          new SmtpError(p.timeoutMessage ?? `TLS handshake timed out after ${p.timeoutMs} ms`, {
            phase: p.phase,
            kind: 'timeout',
          }),
        ),
      Math.max(0, p.timeoutMs),
    );
    const onError = (e: Error & { code?: string }) => {
      const certificate = /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME|VERIFY/i.test(e.code ?? '');
      fail(
        new SmtpError(
          `TLS handshake failed${certificate ? ' (certificate not trusted for this host)' : ''}: ${e.message}`,
          { phase: p.phase, kind: certificate ? 'security' : 'network', cause: e },
        ),
      );
    };
    const onAbort = () => fail(abortError(p.phase, p.signal));
    const onClose = () =>
      onError(Object.assign(new Error('connection closed during the TLS handshake'), { code: 'ECONNRESET' }));
    const onSecure = () => {
      cleanup();
      transport.adopt(secure);
      resolve(describeTls(secure));
    };
    function cleanup() {
      clearTimeout(timer);
      secure.off('error', onError);
      secure.off('close', onClose);
      secure.off('secureConnect', onSecure);
      p.signal?.removeEventListener('abort', onAbort);
    }
    secure.once('error', onError);
    secure.once('close', onClose);
    secure.once('secureConnect', onSecure);
    if (p.signal?.aborted) onAbort();
    else p.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function describeTls(s: tls.TLSSocket): TlsInfo {
  const info: TlsInfo = { protocol: s.getProtocol(), cipher: s.getCipher()?.name ?? '' };
  const cert = s.getPeerCertificate();
  if (cert && Object.keys(cert).length > 0) {
    const cn = (x: unknown) => {
      const v = (x as Record<string, unknown> | undefined)?.CN;
      return Array.isArray(v) ? v.join(', ') : typeof v === 'string' ? v : undefined;
    };
    const subject = cn(cert.subject);
    const issuer = cn(cert.issuer);
    if (subject) info.subject = subject;
    if (issuer) info.issuer = issuer;
    if (cert.valid_to) info.validTo = cert.valid_to;
  }
  return info;
}
