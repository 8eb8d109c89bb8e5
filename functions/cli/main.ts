/**
 * `smtp-send`: the ops tool to check SMTP credentials (`verify`) and send one test message (`send`) with the
 * endpoint's own SMTP client — what the seed did by hand with telnet/openssl s_client.
 *
 * Run: `npm run cli -- verify --url …` (tsx), or the `smtp-send` bin (bin/smtp-send.js), which calls `run()`.
 * Exit codes: 0 ok, 2 usage, 3 permanent failure, 4 transient failure (1 only for an internal bug).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mailboxDomain } from '../mime/address.ts';
import type { DkimSigner } from '../mime/dkim.ts';
import { MimeError } from '../mime/error.ts';
import type { ComposedMessage } from '../mime/types.ts';
import { SendError } from '../send/errors.ts';
import type { SendOutcome } from '../smtp/client.ts';
import { SmtpError } from '../smtp/error.ts';
import type { ConnectionOptions, Credentials, Deadline, OutgoingMessage } from '../smtp/types.ts';
import {
  type Command,
  type ConnectionSpec,
  type MessageSpec,
  type OAuthSpec,
  type OutputSpec,
  parseCommandLine,
} from './args.ts';
import { helpText } from './help.ts';
import { PromptAborted, readHiddenLine } from './prompt.ts';
import {
  capabilitiesJson,
  mimeErrorLine,
  oneLine,
  recipientText,
  replyJson,
  type ServerView,
  sessionLines,
  smtpErrorJson,
  smtpErrorLine,
  smtpExitCode,
  transcriptText,
} from './report.ts';
import { EXIT, UsageError } from './usage-error.ts';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
  /** Aborts the session (SIGINT). */
  signal?: AbortSignal;
}

const PROG = 'smtp-send';

/** Runs one command line; resolves to the exit code. Never throws. */
export async function run(argv: string[], io: CliIo = processIo()): Promise<number> {
  const wantsJson = argv.includes('--json');
  let command: Command | undefined;
  try {
    command = parseCommandLine(argv);
    if (command.kind === 'help') {
      io.stdout.write(helpText(command.topic));
      return EXIT.ok;
    }
    const sender = command.kind === 'send' ? command.message.from : command.connection.user;
    const { options, dkim } = await connectionOptions(command.connection, command.output, io, sender);
    // The clock starts when the session starts (after the prompt and after loading the client code).
    const timeoutMs = command.connection.timeoutMs;
    const deadline = (): Deadline => ({
      deadline: Date.now() + timeoutMs,
      ...(io.signal ? { signal: io.signal } : {}),
    });
    const server: ServerView = {
      host: options.host,
      port: options.port ?? command.connection.port,
      security: options.security ?? command.connection.security,
    };
    if (options.auth !== undefined) server.user = options.auth.username;
    if (command.kind === 'verify') return await runVerify(options, deadline, server, command.output, io);
    return await runSend(options, deadline, server, command.message, command.output, io, dkim);
  } catch (err) {
    const output = command !== undefined && 'output' in command ? command.output : undefined;
    return reportError(err, command?.kind, wantsJson || !!output?.json, io, !!output?.transcript);
  }
}

interface ResolvedConnection {
  options: ConnectionOptions;
  /** DKIM keys from a --secret-file (send signs with them, as the function does). */
  dkim?: DkimSigner[];
}

/**
 * `sender` (--from, or for verify a --user that is an address) gives the default EHLO name: its domain, as the
 * function does with its secret's `from`; without one, "localhost", which only a loopback server is sent.
 */
async function connectionOptions(
  c: ConnectionSpec,
  out: OutputSpec,
  io: CliIo,
  sender: string | undefined,
): Promise<ResolvedConnection> {
  if (c.secretFile !== undefined) return secretFileConnection(c, c.secretFile, out, io);
  const timeouts = { connect: c.timeoutMs, greeting: c.timeoutMs, reply: c.timeoutMs, data: c.timeoutMs };
  const o: ConnectionOptions = { host: c.host, port: c.port, security: c.security, timeouts };
  if (c.allowPlaintext) {
    o.allowPlaintext = true;
    o.allowPlaintextAuth = true;
  }
  const ehlo = c.ehlo ?? (sender === undefined ? undefined : mailboxDomain(sender));
  if (ehlo !== undefined) o.clientName = ehlo;
  if (out.transcript) o.transcript = true;
  if (c.caFile !== undefined) {
    try {
      o.ca = await readFile(c.caFile, 'utf8');
    } catch (err) {
      throw new UsageError(
        `--ca: cannot read ${c.caFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    if (!o.ca.includes('-----BEGIN CERTIFICATE-----'))
      throw new UsageError(`--ca: ${c.caFile} holds no PEM certificate`);
  }
  if (c.user !== undefined) o.auth = c.oauth ? await fetchedToken(c, c.oauth, io) : await credentials(c, io);
  return { options: o };
}

/** The connection exactly as the function builds it from its secret (OAuth token fetched the same way). */
async function secretFileConnection(
  c: ConnectionSpec,
  file: string,
  out: OutputSpec,
  io: CliIo,
): Promise<ResolvedConnection> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `--secret-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  const [{ parseSmtpSecretText, withAccessToken }, { OAuthTokenSource }] = await Promise.all([
    import('../config/smtp-secret.ts'),
    import('../config/oauth-credentials.ts'),
  ]);
  const parsed = parseSmtpSecretText(text, basename(file));
  // The CLI never rewrites the file: a rotated refresh token is reported, the deployed function stores it.
  const writeBack = async () => {
    io.stderr.write(
      `${PROG}: note: the provider rotated the refresh token; ${file} was not changed ` +
        '(the deployed function writes it back to its secret)\n',
    );
  };
  const tokens = parsed.oauth
    ? new OAuthTokenSource(parsed.oauth, parsed.username, { writeBack })
    : undefined;
  const settings = await withAccessToken(parsed, tokens);
  const t = c.timeoutMs;
  const o: ConnectionOptions = {
    ...settings.connection,
    timeouts: { connect: t, greeting: t, reply: t, data: t },
  };
  if (c.allowPlaintext) {
    o.allowPlaintext = true;
    o.allowPlaintextAuth = true;
  }
  if (c.ehlo !== undefined) o.clientName = c.ehlo;
  if (out.transcript) o.transcript = true;
  return settings.dkim ? { options: o, dkim: settings.dkim } : { options: o };
}

/** `--auth xoauth2 --oauth-*`: a client_credentials token (Microsoft Entra ID by default). */
async function fetchedToken(c: ConnectionSpec, spec: OAuthSpec, io: CliIo): Promise<Credentials> {
  const secret = io.env[spec.clientSecretEnv];
  if (secret === undefined || secret === '') {
    throw new UsageError(`environment variable ${spec.clientSecretEnv} is not set or empty`);
  }
  const [grant, { OAuthTokenSource }] = await Promise.all([
    import('../config/oauth-grant.ts'),
    import('../config/oauth-credentials.ts'),
  ]);
  const tokenUrl = spec.tokenUrl ?? grant.microsoftTokenUrl(spec.tenant!);
  const problem = grant.tokenUrlProblem(tokenUrl);
  if (problem) throw new UsageError(`--oauth-token-url ${problem}`);
  const tokens = new OAuthTokenSource(
    {
      grant: 'client_credentials',
      tokenUrl,
      clientId: spec.clientId,
      clientSecret: secret,
      scope: spec.scope ?? grant.MICROSOFT_SCOPE,
    },
    c.user!,
  );
  const { accessToken } = await tokens.get();
  return { username: c.user!, accessToken, mechanism: 'XOAUTH2' };
}

async function credentials(c: ConnectionSpec, io: CliIo): Promise<Credentials> {
  const user = c.user!;
  let secret: string;
  if (c.secretEnv !== undefined) {
    const v = io.env[c.secretEnv];
    if (v === undefined || v === '') {
      throw new UsageError(`environment variable ${c.secretEnv} is not set or empty`);
    }
    secret = v;
  } else if (io.stdin.isTTY) {
    const what = c.auth === 'xoauth2' ? 'Access token' : 'Password';
    secret = await readHiddenLine(
      `${what} for ${user}@${c.host}: `,
      io.stdin as import('node:tty').ReadStream,
      io.stderr,
    );
    if (secret === '') throw new UsageError('empty password');
  } else {
    throw new UsageError(
      `a password is needed for ${user}: use --password-env NAME (stdin is not a terminal, so there is no prompt)`,
    );
  }
  if (c.auth === 'xoauth2') return { username: user, accessToken: secret, mechanism: 'XOAUTH2' };
  const creds: Credentials = { username: user, password: secret };
  if (c.auth === 'plain') creds.mechanism = 'PLAIN';
  if (c.auth === 'login') creds.mechanism = 'LOGIN';
  return creds;
}

async function runVerify(
  options: ConnectionOptions,
  deadline: () => Deadline,
  server: ServerView,
  out: OutputSpec,
  io: CliIo,
): Promise<number> {
  // Loaded on demand: `--help` and usage errors work (and start fast) without the protocol layer.
  const { verify } = await import('../smtp/index.ts');
  const result = await verify({ ...options, ...deadline() });
  const authenticated = options.auth !== undefined;
  if (out.json) {
    io.stdout.write(
      `${JSON.stringify({
        ok: true,
        command: 'verify',
        server,
        greeting: result.greeting,
        authenticated,
        authMechanism: result.authMechanism ?? null,
        tls: result.tls ?? null,
        capabilities: capabilitiesJson(result.capabilities),
        timings: result.timings,
        roundTrips: result.roundTrips,
        transcript: result.transcript,
      })}\n`,
    );
    return EXIT.ok;
  }
  if (out.transcript) io.stdout.write(transcriptText(result.transcript));
  const lines = [`Greeting:      ${oneLine(result.greeting)}`, ...sessionLines(server, result)];
  lines.push(
    authenticated
      ? `Result:        OK, authenticated as ${server.user}${result.authMechanism ? ` (${result.authMechanism})` : ''}`
      : 'Result:        OK (no --user given: AUTH not tried)',
  );
  io.stdout.write(`${lines.join('\n')}\n`);
  return EXIT.ok;
}

async function runSend(
  options: ConnectionOptions,
  deadline: () => Deadline,
  server: ServerView,
  m: MessageSpec,
  out: OutputSpec,
  io: CliIo,
  dkim?: DkimSigner[],
): Promise<number> {
  const smtp = import('../smtp/index.ts'); // loads while the message is composed
  const composed = await composeSpec(m, dkim);
  const { sendMail } = await smtp;
  const msg: OutgoingMessage = {
    envelope: composed.envelope,
    content: composed.bytes,
    info: { eightBit: composed.eightBit, smtpUtf8: composed.smtpUtf8 },
  };
  const outcome = await sendMail({ ...options, ...deadline() }, msg);
  const code =
    outcome.rejected.length === 0
      ? EXIT.ok
      : outcome.rejected.every((r) => r.code >= 400 && r.code < 500)
        ? EXIT.transient
        : EXIT.permanent;
  if (out.json) {
    io.stdout.write(
      `${JSON.stringify({
        ok: code === EXIT.ok,
        command: 'send',
        server,
        messageId: composed.messageId,
        size: composed.size,
        envelope: composed.envelope,
        accepted: outcome.accepted,
        rejected: outcome.rejected,
        response: replyJson(outcome.response),
        queueId: outcome.queueId,
        tls: outcome.tls ?? null,
        capabilities: capabilitiesJson(outcome.capabilities),
        timings: outcome.timings,
        roundTrips: outcome.roundTrips,
        transcript: outcome.transcript,
        exitCode: code,
      })}\n`,
    );
    return code;
  }
  if (out.transcript) io.stdout.write(transcriptText(outcome.transcript));
  io.stdout.write(`${sendReport(server, composed, outcome, code).join('\n')}\n`);
  return code;
}

/** The message the flags describe: files read for `--attach`, composed, DKIM-signed when asked. */
async function composeSpec(m: MessageSpec, dkim?: DkimSigner[]): Promise<ComposedMessage> {
  const attachments = await Promise.all(
    m.attach.map(async (file) => {
      try {
        return { filename: basename(file), content: new Uint8Array(await readFile(file)) };
      } catch (err) {
        throw new UsageError(
          `--attach: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    }),
  );
  const { compose } = await import('../mime/index.ts');
  const unsigned = compose({
    from: m.from,
    to: m.to,
    cc: m.cc,
    bcc: m.bcc,
    ...(m.replyTo !== undefined ? { replyTo: m.replyTo } : {}),
    subject: m.subject,
    ...(m.text !== undefined ? { text: m.text } : {}),
    ...(m.html !== undefined ? { html: m.html } : {}),
    ...(attachments.length > 0 ? { attachments } : {}),
  });
  return dkim ? (await import('../mime/dkim.ts')).signMessage(unsigned, dkim) : unsigned;
}

/** The human-readable report of a send. */
function sendReport(
  server: ServerView,
  composed: ComposedMessage,
  outcome: SendOutcome,
  code: number,
): string[] {
  const lines = sessionLines(server, outcome);
  lines.push(`Message-ID:    ${composed.messageId} (${composed.size} octets)`);
  lines.push(`Accepted:      ${outcome.accepted.map((r) => r.address).join(', ') || 'none'}`);
  if (outcome.rejected.length > 0)
    lines.push(`Refused:       ${outcome.rejected.map(recipientText).join('; ')}`);
  const r = outcome.response;
  lines.push(
    `Server reply:  ${r.code}${r.enhancedCode ? ` ${r.enhancedCode}` : ''} ${oneLine(r.text.trim())}` +
      (outcome.queueId ? ` (queue id ${outcome.queueId})` : ''),
  );
  lines.push(
    code === EXIT.ok
      ? 'Result:        OK, message accepted for every recipient'
      : `Result:        PARTIAL, message accepted for ${outcome.accepted.length} of ${outcome.accepted.length + outcome.rejected.length} recipients`,
  );
  return lines;
}

function reportError(
  err: unknown,
  command: string | undefined,
  json: boolean,
  io: CliIo,
  transcript = false,
): number {
  let code: number;
  let line: string;
  let detail: Record<string, unknown>;
  if (err instanceof UsageError) {
    code = EXIT.usage;
    line = err.message;
    detail = { type: 'usage', message: err.message };
  } else if (err instanceof PromptAborted) {
    code = EXIT.interrupted;
    line = err.message;
    detail = { type: 'aborted', message: err.message };
  } else if (err instanceof MimeError) {
    code = EXIT.usage;
    line = mimeErrorLine(err);
    detail = { type: 'message', field: err.field, code: err.code, message: oneLine(err.message) };
  } else if (err instanceof SendError) {
    // The secret file or the OAuth token endpoint (configuration_error: permanent; unavailable: transient).
    code = err.transient ? EXIT.transient : err.code === 'validation_failed' ? EXIT.usage : EXIT.permanent;
    line = `${oneLine(err.message)}${err.hint ? `\nhint (${err.hint.code}): ${err.hint.text}` : ''}`;
    detail = {
      type: 'configuration',
      code: err.code,
      message: oneLine(err.message),
      transient: err.transient,
    };
    if (err.hint) detail.hint = { code: err.hint.code, message: err.hint.text };
  } else if (err instanceof SmtpError) {
    code = smtpExitCode(err);
    line = smtpErrorLine(err);
    detail = smtpErrorJson(err, transcript);
    // --transcript: the dialogue up to the failure, on stdout as after a success (the error line goes to stderr)
    if (transcript && !json) io.stdout.write(transcriptText(err.transcript));
  } else {
    code = EXIT.internal;
    line = `internal error: ${oneLine(err instanceof Error ? `${err.name}: ${err.message}` : String(err))}`;
    detail = { type: 'internal', message: line };
  }
  if (json) {
    io.stdout.write(
      `${JSON.stringify({ ok: false, command: command ?? null, error: detail, exitCode: code })}\n`,
    );
  } else {
    io.stderr.write(`${PROG}: ${line}\n`);
    if (code === EXIT.usage && err instanceof UsageError) io.stderr.write(`Try '${PROG} --help'.\n`);
  }
  return code;
}

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/** Process entry: runs argv, aborts cleanly on Ctrl-C, exits once stdout/stderr are flushed. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const abort = new AbortController();
  const onSigint = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  const code = await run(argv, { ...processIo(), signal: abort.signal });
  process.off('SIGINT', onSigint);
  // Exit explicitly: a CLI must not hang on a stray handle; wait for the pipes to drain first.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
