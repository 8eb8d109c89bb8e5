/**
 * What the client knows of a server address before talking to it: whether it is this host (loopback), and the
 * port a security mode uses by default. No I/O; small on purpose, so that a cold start can open the TCP connection
 * (`TcpOpening`) before the rest of the client is loaded.
 */
import { isIP } from 'node:net';
import type { Security } from './types.ts';

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return !!mapped && mapped[1]!.startsWith('127.');
}

/** 465 for implicit TLS (RFC 8314), else 587, the submission port (RFC 6409). */
export function defaultPort(security: Security): number {
  return security === 'tls' ? 465 : 587;
}
