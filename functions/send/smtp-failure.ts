/**
 * What an SMTP failure means to the caller of the use case: `SmtpError` (functions/smtp) → `SendError` with a
 * stable code. `delivery: 'unknown'` is always `delivery_unknown`; everything else here was not sent.
 */
import { SmtpError } from '../smtp/error.ts';
import { SendError, type SendErrorOptions, type SmtpDetail } from './errors.ts';
import { type ProviderHint, providerHint } from './provider-hints.ts';

/**
 * The client's failure as an `SmtpError`. A `SendError` is the use case's own and is rethrown; anything else came
 * from inside the client: we cannot know whether the server has the message.
 */
export function smtpFailureOf(e: unknown): SmtpError {
  if (e instanceof SmtpError) return e;
  if (e instanceof SendError) throw e;
  return new SmtpError('unexpected client failure', {
    phase: 'data',
    kind: 'protocol',
    delivery: 'unknown',
    cause: e,
  });
}

function smtpDetail(e: SmtpError): SmtpDetail {
  const d: SmtpDetail = { phase: e.phase };
  if (e.code !== undefined) d.code = e.code;
  if (e.enhancedCode !== undefined) d.enhancedCode = e.enhancedCode;
  return d;
}

function describe(e: SmtpError): string {
  const code = e.code !== undefined ? `${e.code}${e.enhancedCode ? ` ${e.enhancedCode}` : ''}` : e.kind;
  return `${code} during ${e.phase}`;
}

/** The server may have the message (`delivery: 'unknown'`). */
export function deliveryUnknown(e: SmtpError, messageId: string): SendError {
  return new SendError(
    'delivery_unknown',
    `The connection failed after the message was handed over (${describe(e)}); the server may have it ` +
      `(Message-ID ${messageId}). Do not retry blindly: check the recipient first.`,
    { smtp: smtpDetail(e) },
  );
}

/** SMTP failure (delivery not-sent) → stable code, with a provider hint when the reply is a known one. */
export function mapSmtpError(e: SmtpError, afterRefresh = false): SendError {
  const hint = e.kind === 'reply' ? providerHint(e) : undefined;
  if (hint) return withHint(mapReply(e, afterRefresh), hint);
  return mapReply(e, afterRefresh);
}

function withHint(err: SendError, hint: ProviderHint): SendError {
  const o: SendErrorOptions = { hint };
  if (err.smtp) o.smtp = { ...err.smtp, hint: hint.code };
  if (err.retryAfter !== undefined) o.retryAfter = err.retryAfter;
  return new SendError(err.code, err.message, o);
}

function mapReply(e: SmtpError, afterRefresh: boolean): SendError {
  const smtp = smtpDetail(e);
  // Any 5xx to AUTH (535 credentials, 534 app password, 550 5.7.30 basic auth off) is the deployment's to fix.
  if (e.phase === 'auth' && e.code !== undefined && e.code >= 500) {
    return new SendError(
      'configuration_error',
      `SMTP authentication failed (${describe(e)})${afterRefresh ? ' even with a freshly read secret (and a new token)' : ''}`,
      { smtp },
    );
  }
  if (e.kind === 'security') {
    return new SendError(
      'configuration_error',
      `the SMTP session was refused by a safety rule (${describe(e)})`,
      { smtp },
    );
  }
  if (e.kind === 'usage') {
    return new SendError(
      'smtp_rejected',
      `the message cannot be sent to this server (${describe(e)}): ${e.message}`,
      { smtp },
    );
  }
  if (e.transient || e.code === undefined) {
    return new SendError(
      'smtp_unavailable',
      `the mail server is unavailable (${describe(e)}); try again later`,
      {
        smtp,
        retryAfter: e.code === undefined ? 10 : 60,
      },
    );
  }
  return new SendError('smtp_rejected', `the mail server rejected the message (${describe(e)})`, { smtp });
}
