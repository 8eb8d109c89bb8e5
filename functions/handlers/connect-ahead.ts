/**
 * The first thing a cold start does, before the rest of the handler's code is even loaded: when the configuration
 * names the SMTP server (`smtp`) and the session is kept (`SMTP_REUSE`), start the TCP connection to it. The
 * connect and the server's greeting (often delayed on purpose by the server) then take place while the code loads,
 * instead of after init; `prewarm` carries on from the buffered greeting (EHLO, STARTTLS, …) one turn after init.
 * Only the configuration's `smtp` part is read here (validated by its schema); the whole configuration is
 * validated as always by `createRuntime`, and a connection nobody uses is closed.
 */
import { smtpServerOfConfig } from '../config/smtp-server.ts';
import { hintedAddress, PRECONNECT_BUDGET_MS, transportOptionsFromEnv } from '../send/transport-options.ts';
import { TcpOpening } from '../smtp/transport.ts';

export function openSmtpAhead(env: NodeJS.ProcessEnv): TcpOpening | undefined {
  if (!transportOptionsFromEnv(env).reuse) return undefined;
  const server = smtpServerOfConfig(env);
  if (!server) return undefined;
  return new TcpOpening({ ...hintedAddress(server), timeoutMs: PRECONNECT_BUDGET_MS });
}
