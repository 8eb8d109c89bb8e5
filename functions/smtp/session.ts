/**
 * The SMTP session state machine (RFC 5321 + 2920 PIPELINING + 3030 CHUNKING + 3207 STARTTLS + 4954 AUTH).
 * NO I/O: the driver (`connection.ts`) asks `next()` what to do, writes the group it gets in ONE write, feeds
 * every reply back through `onReply()`, and performs the TLS upgrade when told to.
 *
 * Grouping rules (what may share one write, RFC 2920 §3.1):
 *   greeting            wait only (never talk first)
 *   EHLO                ends a group
 *   STARTTLS            ends a group; then TLS; then capabilities are forgotten and EHLO is sent again
 *   AUTH PLAIN <ir>     may be followed by MAIL/RCPT/DATA|BDAT/QUIT when PIPELINING
 *   AUTH LOGIN/XOAUTH2  end their group (challenges follow)
 *   RSET, MAIL, RCPT    anywhere in a group
 *   DATA                ends a group (354 changes state); the body + `.` starts the next group
 *   BDAT n LAST + body  anywhere: back-to-back transactions go together (RSET between them, see below)
 *   QUIT                appended to the last group when the caller does not keep the session
 * Without PIPELINING every command is its own group.
 *
 * Pipelined transactions with CHUNKING: when transaction k+1 follows k in the same write, an RSET goes between
 * them, because if all RCPTs of k fail the server keeps k's MAIL open and discards k's BDAT (RFC 3030 §4.2),
 * which would make k+1's MAIL a nested MAIL (503). After any transaction that failed with MAIL accepted, the next
 * group starts with RSET.
 */
import { parseCapabilities } from './capability.ts';
import * as cmd from './command.ts';
import { asSmtpError, replyError, SmtpError } from './error.ts';
import { formatReply } from './reply.ts';
import { chooseMechanism, loginResponses, plainInitialResponse, xoauth2InitialResponse } from './sasl.ts';
import {
  endsData,
  type Item,
  type SessionItem,
  sessionItem,
  Transaction,
  type TransactionItem,
  type WrittenItem,
} from './transaction.ts';
import type {
  AuthMechanism,
  Capabilities,
  Credentials,
  OutgoingMessage,
  Phase,
  Reply,
  Security,
} from './types.ts';

/** Stop adding further transactions to one write once it holds this many octets. */
export const MAX_GROUP_OCTETS = 1024 * 1024;

export interface SessionOptions {
  security: Security;
  clientName: string;
  auth?: Credentials;
  /** AUTH over clear text permitted (loopback host + allowPlaintextAuth). */
  plaintextAuthAllowed: boolean;
  /** Caller's switches; the server must also advertise the extension. Default true. */
  pipelining?: boolean;
  chunking?: boolean;
  /** True from the start for implicit TLS. */
  tls: boolean;
}

export type Action =
  /** Wait for the reply to `item` (the greeting, or the oldest written item). */
  | { type: 'read'; item: Item }
  /** Write these items in ONE write (corked); their replies then come as `read` actions. */
  | { type: 'write'; items: WrittenItem[] }
  /** The server said 220 to STARTTLS: upgrade the socket now, then call `tlsEstablished()`. */
  | { type: 'starttls' }
  /** Nothing left to do; the session is open and authenticated (warm reuse possible). */
  | { type: 'idle' }
  /** The session is over (QUIT answered or skipped, or a fatal error). */
  | { type: 'done' };

type State = 'greeting' | 'ehlo' | 'starttls' | 'upgrade' | 'ready' | 'closed';

/**
 * AUTH: not started; started (with the SASL answers still to write, and the XOAUTH2 error challenge if the server
 * sent one); done.
 */
type AuthState =
  | { step: 'none' }
  | { step: 'started'; mechanism: AuthMechanism; sasl: SessionItem[]; xoauthError?: Reply }
  | { step: 'done'; mechanism: AuthMechanism };

/**
 * How the session ends: QUIT not asked for; asked for (it goes with the last group); written; or mute: the
 * channel is closing or gone (421, a connection failure, an unexpected SASL challenge) and nothing more is said.
 */
type Closing = 'open' | 'quit-requested' | 'quit-written' | 'mute';

const DOT_LINE = new TextEncoder().encode('.\r\n');

export class Session {
  private state: State = 'greeting';
  private readonly awaiting: Item[] = [{ kind: 'greeting', phase: 'greeting' }];
  private readonly txs: Transaction[] = [];
  private caps?: Capabilities;
  private auth: AuthState = { step: 'none' };
  private closing: Closing = 'open';
  private needRset = false;
  /** Must be written before anything else (the `.` that ends a DATA we did not want). */
  private urgent: WrittenItem[] = [];
  private tls: boolean;
  fatal?: SmtpError;
  greeting?: Reply;

  constructor(private opts: SessionOptions) {
    this.tls = opts.tls;
  }

  get capabilities(): Capabilities | undefined {
    return this.caps;
  }
  get authMechanism(): AuthMechanism | undefined {
    return this.auth.step === 'done' ? this.auth.mechanism : undefined;
  }
  /** The phase we are in, for errors that are not replies (timeouts, drops). */
  get phase(): Phase {
    const first = this.awaiting[0];
    if (first) return first.phase;
    switch (this.state) {
      case 'greeting':
        return 'greeting';
      case 'ehlo':
        return 'ehlo';
      case 'starttls':
      case 'upgrade':
        return 'starttls';
      default:
        return this.closing === 'quit-written' ? 'quit' : 'mail';
    }
  }
  /**
   * A message's last byte is among the written, unanswered items: replies before it may be held back by a server
   * that answers only once it has read the whole write, so waits use the data timeout.
   */
  get awaitingDataEnd(): boolean {
    return this.awaiting.some(endsData);
  }
  /** Ready for more transactions without reconnecting. */
  get usable(): boolean {
    const talking = this.closing === 'open' || this.closing === 'quit-requested';
    return this.state === 'ready' && !this.fatal && talking && this.awaiting.length === 0;
  }

  enqueue(message: OutgoingMessage): Transaction {
    const tx = new Transaction(message);
    if (this.fatal) tx.fail(this.fatal);
    else this.txs.push(tx);
    return tx;
  }

  /** Send QUIT once all queued work is done (pipelined with the last group when possible). */
  requestQuit(): void {
    if (this.closing === 'open') this.closing = 'quit-requested';
  }

  /** Credentials are known (given at the start or by `provideCredentials`). */
  get hasCredentials(): boolean {
    return this.opts.auth !== undefined;
  }

  /**
   * Credentials that arrive after the connection was opened (a cold start connects while the secret is fetched).
   * Accepted only before any AUTH: the next group then starts with AUTH exactly as if they had been given at the
   * start (TLS first, the server must offer a mechanism that fits, else nothing is sent).
   */
  provideCredentials(auth: Credentials): void {
    if (this.opts.auth || this.auth.step !== 'none') {
      throw new SmtpError('this session already has credentials', { phase: 'auth', kind: 'usage' });
    }
    this.opts = { ...this.opts, auth };
  }

  /** The next transaction on a kept session starts with RSET (pipelined with it). */
  markReused(): void {
    this.needRset = true;
  }

  next(): Action {
    const first = this.awaiting[0];
    if (first) return { type: 'read', item: first };
    if (this.urgent.length > 0 && this.closing !== 'mute') return this.write(this.urgent.splice(0));
    if (this.state === 'closed') return { type: 'done' };
    if (this.state === 'upgrade') return { type: 'starttls' };
    if (this.fatal || this.closing === 'quit-written') return this.finish();
    try {
      if (this.state === 'ehlo') return this.write([sessionItem(cmd.ehlo(this.opts.clientName))]);
      if (this.state === 'starttls') return this.write([sessionItem(cmd.starttls())]);
      return this.plan(); // 'ready' ('greeting' never gets here: the greeting is awaited from the start)
    } catch (e) {
      this.setFatal(asSmtpError(e, this.phase));
      return this.finish();
    }
  }

  private finish(): Action {
    if (this.closing === 'open' || this.closing === 'quit-requested') return this.write([this.quitItem()]);
    this.state = 'closed';
    return { type: 'done' };
  }

  private quitItem(): SessionItem {
    this.closing = 'quit-written';
    return sessionItem(cmd.quit());
  }

  private write(items: WrittenItem[]): Action {
    for (const it of items) {
      if (endsData(it)) it.tx.dataEnd = 'written';
      this.awaiting.push(it);
    }
    return { type: 'write', items };
  }

  /** The driver could not write `items` (the connection was already gone, or the deadline passed). */
  notWritten(items: WrittenItem[]): void {
    for (const it of items) if (endsData(it)) it.tx.dataEnd = 'unwritten';
  }

  private get pipelining(): boolean {
    return !!this.caps?.pipelining && this.opts.pipelining !== false;
  }
  private get chunking(): boolean {
    return !!this.caps?.chunking && this.opts.chunking !== false;
  }

  /** Build the next group once the session is ready (EHLO done, TLS as required). */
  private plan(): Action {
    if (this.auth.step === 'started' && this.auth.sasl.length > 0)
      return this.write([this.auth.sasl.shift()!]);
    const group: WrittenItem[] = [];
    if (this.opts.auth && this.auth.step !== 'done') {
      if (this.auth.step === 'started')
        throw new SmtpError('authentication did not complete', { phase: 'auth', kind: 'protocol' });
      const { item, mechanism } = this.startAuth(this.opts.auth);
      group.push(item);
      if (mechanism !== 'PLAIN' || !this.pipelining) return this.write(group);
    }
    const full = this.planTransactions(group);
    if (full) return full;
    const pending = this.txs.some((t) => !t.settled && t.steps.length > 0);
    if (this.closing === 'quit-requested' && !pending && (group.length === 0 || this.pipelining))
      group.push(this.quitItem());
    if (group.length === 0) return { type: 'idle' };
    return this.write(group);
  }

  /**
   * Add the queued and active transactions' steps to `group`, as far as the grouping rules allow. Returns the
   * write when the group must end here; undefined when every transaction had its say.
   */
  private planTransactions(group: WrittenItem[]): Action | undefined {
    let octets = 0;
    let prevInGroup = false;
    for (const tx of this.txs) {
      if (tx.settled) continue;
      if (tx.state.is === 'queued') {
        if (prevInGroup && octets >= MAX_GROUP_OCTETS) break;
        if (!tx.start(this.caps!, this.chunking)) continue;
        if (this.needRset || (prevInGroup && this.chunking)) {
          group.push(sessionItem(cmd.rset()));
          this.needRset = false;
          if (!this.pipelining) return this.write(group);
        }
      }
      while (tx.steps.length > 0) {
        const step = tx.steps[0]!;
        if (step.kind === 'message' && !tx.got354) break;
        if (
          (step.kind === 'data' || step.kind === 'bdat') &&
          group.length === 0 &&
          tx.accepted.length === 0
        ) {
          // Not pipelined: every RCPT was answered and refused, so do not start the data.
          if (tx.rejected.length === tx.message.envelope.to.length) {
            tx.fail(tx.allRejected());
            this.needRset = this.needRset || tx.mailAccepted;
            break;
          }
        }
        tx.steps.shift();
        group.push(step);
        octets += step.bytes.length;
        if (!this.pipelining || step.kind === 'data') return this.write(group);
      }
      if (tx.settled) continue;
      prevInGroup = true;
      if (tx.steps.length > 0) return this.write(group);
    }
    return undefined;
  }

  /** The AUTH command for `creds` (its SASL answers, if any, wait in the auth state). */
  private startAuth(creds: Credentials): { item: SessionItem; mechanism: AuthMechanism } {
    if (!this.tls && !this.opts.plaintextAuthAllowed) {
      throw new SmtpError('refusing to send credentials over an unencrypted connection', {
        phase: 'auth',
        kind: 'security',
      });
    }
    const offered = this.caps?.auth ?? [];
    if (offered.length === 0) {
      throw new SmtpError('credentials were given but the server does not advertise AUTH; nothing was sent', {
        phase: 'auth',
        kind: 'security',
      });
    }
    const mechanism = chooseMechanism(creds, offered);
    let sasl: SessionItem[] = [];
    let command: cmd.Command<'auth'>;
    if (mechanism === 'PLAIN' && 'password' in creds) {
      command = cmd.auth('PLAIN', plainInitialResponse(creds.username, creds.password));
    } else if (mechanism === 'LOGIN' && 'password' in creds) {
      const [u, p] = loginResponses(creds.username, creds.password);
      sasl = [sessionItem(cmd.saslResponse(u)), sessionItem(cmd.saslResponse(p))];
      command = cmd.auth('LOGIN');
    } else if (mechanism === 'XOAUTH2' && 'accessToken' in creds) {
      command = cmd.auth('XOAUTH2', xoauth2InitialResponse(creds.username, creds.accessToken));
    } else {
      throw new SmtpError(`AUTH ${mechanism} does not fit the credentials given`, {
        phase: 'auth',
        kind: 'usage',
      });
    }
    const item = sessionItem(command);
    this.auth = { step: 'started', mechanism, sasl };
    return { item, mechanism };
  }

  /** Consume the reply to the oldest outstanding item. */
  onReply(reply: Reply): void {
    const it = this.awaiting.shift();
    if (!it) {
      throw new SmtpError(`unexpected reply from the server: ${formatReply(reply)}`, {
        phase: this.phase,
        kind: 'protocol',
      });
    }
    if (it.kind === 'greeting') {
      this.greeting = reply;
      if (reply.code === 220) this.state = 'ehlo';
      else if (reply.code === 421) this.closingReply(reply, it.phase, '');
      else this.setFatal(replyError('server refused the session', 'greeting', reply, ''));
      return;
    }
    if (reply.code === 221 && it.kind !== 'quit') {
      // 221 answers QUIT only: the server is closing, and this reply is not the one `it` waits for (a server that
      // never answers the final dot but answers the pipelined QUIT). Whatever was written is unanswered: a
      // message whose end of data went out is `unknown`, never accepted.
      this.abort(
        replyError('server closed the connection instead of answering', it.phase, reply, it.command, true),
      );
      return;
    }
    if (reply.code === 421 && it.kind !== 'quit') {
      this.closingReply(reply, it.phase, it.command);
      return;
    }
    this.onItemReply(it, reply);
  }

  /** 421: the server is closing the channel: nothing after this will be answered. */
  private closingReply(reply: Reply, phase: Phase, command: string): void {
    this.closing = 'mute';
    this.setFatal(replyError('server closing the connection', phase, reply, command, true));
    // Nothing written after the command it answers was processed: those messages stay not-sent.
    this.awaiting.length = 0;
  }

  private onItemReply(it: WrittenItem, reply: Reply): void {
    switch (it.kind) {
      case 'ehlo':
        this.onEhlo(reply, it);
        return;
      case 'starttls':
        if (reply.code === 220) this.state = 'upgrade';
        else this.setFatal(replyError('STARTTLS refused', 'starttls', reply, it.command));
        return;
      case 'auth':
      case 'sasl':
        this.onAuth(reply, it);
        return;
      case 'rset':
        if (reply.code >= 300) this.setFatal(replyError('RSET refused', 'rset', reply, it.command));
        return;
      case 'quit':
        this.state = 'closed';
        return;
      default:
        this.onTransactionReply(it, reply);
        return;
    }
  }

  private onEhlo(reply: Reply, it: SessionItem): void {
    if (reply.code !== 250) {
      this.setFatal(replyError('EHLO refused', 'ehlo', reply, it.command));
      return;
    }
    this.caps = parseCapabilities(reply);
    if (!this.tls && this.opts.security === 'starttls') {
      if (!this.caps.startTls) {
        this.setFatal(
          new SmtpError('server does not advertise STARTTLS (required); nothing was sent', {
            phase: 'starttls',
            kind: 'security',
          }),
        );
        return;
      }
      this.state = 'starttls';
      return;
    }
    this.state = 'ready';
  }

  /** Call after the TLS handshake of a STARTTLS upgrade: capabilities are forgotten, EHLO again. */
  tlsEstablished(): void {
    this.tls = true;
    delete this.caps;
    this.state = 'ehlo';
  }

  private onAuth(reply: Reply, it: SessionItem): void {
    const auth = this.auth;
    if (auth.step !== 'started') return;
    if (reply.code === 235) {
      this.auth = { step: 'done', mechanism: auth.mechanism };
      return;
    }
    if (reply.code === 334) {
      if (auth.mechanism === 'LOGIN' && auth.sasl.length > 0) return; // plan() writes the next answer
      if (auth.mechanism === 'XOAUTH2' && it.kind === 'auth') {
        // Error challenge (base64 JSON): answer with an empty line, the server then sends 535.
        auth.sasl = [sessionItem(cmd.saslResponse(''))];
        auth.xoauthError = reply;
        return;
      }
      this.setFatal(
        new SmtpError('unexpected SASL challenge', {
          phase: 'auth',
          kind: 'protocol',
          code: 334,
          serverText: reply.text,
        }),
      );
      this.closing = 'mute';
      return;
    }
    auth.sasl = [];
    // The XOAUTH2 error challenge says why (the lines, and so the message, stay the server's reply).
    const { xoauthError } = auth;
    const said = xoauthError
      ? { ...reply, text: `${reply.text}\n${decodeChallenge(xoauthError.text)}` }
      : reply;
    this.setFatal(replyError('authentication failed', 'auth', said, it.command));
  }

  private onTransactionReply(it: TransactionItem, reply: Reply): void {
    switch (it.tx.onReply(it, reply)) {
      case 'rset':
        this.needRset = true;
        return;
      case 'end-data':
        this.urgent.push({
          kind: 'abandon-data',
          phase: 'data',
          bytes: DOT_LINE,
          log: ['.'],
          command: '.',
          tx: it.tx,
        });
        return;
      case 'abandon':
        this.abort(
          new SmtpError('closed the connection in DATA to abandon a transaction that had already failed', {
            phase: 'data',
            kind: 'protocol',
          }),
        );
        return;
      default:
        return;
    }
  }

  private setFatal(err: SmtpError): void {
    if (!this.fatal) this.fatal = err;
    for (const tx of this.txs) if (!tx.settled) tx.fail(err.withDelivery('not-sent'));
    if (this.auth.step === 'started') this.auth.sasl = [];
  }

  /**
   * The connection failed (EOF, reset, timeout, protocol violation, abort). Every unsettled transaction gets the
   * error with its delivery verdict: `unknown` when its last byte was written and no final reply came.
   */
  abort(err: SmtpError): void {
    for (const tx of this.txs) {
      // Last byte written, no final reply: the message's fate is decided in its data phase, and unknown. That
      // holds for a transaction already failed by a session error too (its BDAT went out behind a refused AUTH).
      const unknown = tx.dataEnd === 'written';
      if (!tx.settled) tx.fail(unknown ? err.withDelivery('unknown', 'data') : err.withDelivery('not-sent'));
      else if (unknown && tx.error?.delivery === 'not-sent') tx.reclassify('unknown', 'data');
    }
    if (!this.fatal) this.fatal = err;
    this.closing = 'mute';
    this.awaiting.length = 0;
    this.state = 'closed';
  }

  /** Forget settled transactions (kept sessions). */
  prune(): void {
    for (let i = this.txs.length - 1; i >= 0; i--) if (this.txs[i]!.settled) this.txs.splice(i, 1);
  }
}

function decodeChallenge(text: string): string {
  try {
    return Buffer.from(text.trim(), 'base64').toString('utf8');
  } catch {
    return '';
  }
}
