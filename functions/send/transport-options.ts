/**
 * How the warm SMTP session is kept (`SMTP_REUSE`, `SMTP_IDLE_SECONDS`) and the SMTP server a cold start may
 * connect to ahead of the secret. Apart from `transport.ts` (and without the SMTP client) so that the cold start's
 * first module can decide whether to open the connection ahead before the rest of the code loads.
 */
import { defaultPort } from '../smtp/host.ts';
import type { Security } from '../smtp/types.ts';

export interface TransportOptions {
  reuse: boolean;
  idleTimeoutMs: number;
}

export function transportOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TransportOptions {
  const reuse = !/^(false|0|no|off)$/iu.test(env.SMTP_REUSE ?? '');
  const idle = Number(env.SMTP_IDLE_SECONDS ?? '');
  return { reuse, idleTimeoutMs: Number.isFinite(idle) && idle > 0 ? idle * 1000 : 60_000 };
}

/** The SMTP server as the configuration names it, before the secret (with the credentials) is known. */
export interface SmtpServerHint {
  host: string;
  port?: number;
  security?: Security;
  clientName?: string;
}

/** How long a connection opened ahead may take (TCP + TLS + EHLO); the first send waits for it at most this. */
export const PRECONNECT_BUDGET_MS = 5000;

/** Where a connection ahead goes: the hinted host, at its port (the security mode's default when not given). */
export function hintedAddress(hint: SmtpServerHint): { host: string; port: number } {
  return { host: hint.host, port: hint.port ?? defaultPort(hint.security ?? 'starttls') };
}
