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
import type { Command, CommandKind } from './command.ts';
import * as cmd from './command.ts';
import { encodeData, frameBdat, hasEightBit, normalizedSize } from './data.ts';
import { SmtpError } from './error.ts';
import { formatReply } from './reply.ts';
import { chooseMechanism, loginResponses, plainInitialResponse, xoauth2InitialResponse } from './sasl.ts';
import type {
  AuthMechanism,
  Capabilities,
  Credentials,
  OutgoingMessage,
  Phase,
  RecipientResult,
  Reply,
  Security,
  TransactionResult,
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

/** A command (`command.ts`), or one of the two things that earn a reply without being a command. */
export type ItemKind = CommandKind | 'greeting' | 'message';

/** One unit of a group: bytes to write and the one reply they earn. */
export interface Item {
  kind: ItemKind;
  phase: Phase;
  bytes: Uint8Array;
  /** Redacted transcript lines for what is written. */
  log: string[];
  /** Redacted command, for errors. */
  command: string;
  tx?: Transaction;
  /** Recipient address (rcpt items). */
  address?: string;
  /** Its reply is the final reply to the message (the `.` or BDAT LAST). */
  endsData?: boolean;
}

export type Action =
  /** Wait for the reply to `item` (the greeting, or the oldest written item). */
  | { type: 'read'; item: Item }
  /** Write these items in ONE write (corked); their replies then come as `read` actions. */
  | { type: 'write'; items: Item[] }
  /** The server said 220 to STARTTLS: upgrade the socket now, then call `tlsEstablished()`. */
  | { type: 'starttls' }
  /** Nothing left to do; the session is open and authenticated (warm reuse possible). */
  | { type: 'idle' }
  /** The session is over (QUIT answered or skipped, or a fatal error). */
  | { type: 'done' };

type TxState = 'queued' | 'active' | 'done' | 'failed';

/** One mail transaction (MAIL … end of data). */
export class Transaction {
  state: TxState = 'queued';
  accepted: RecipientResult[] = [];
  rejected: RecipientResult[] = [];
  result?: TransactionResult;
  error?: SmtpError;
  /** The server answered 2xx to MAIL (its transaction is open until the end of data or RSET). */
  mailAccepted = false;
  /** The last byte of the message (`.` or BDAT LAST chunk) was handed to the socket. */
  dataEndWritten = false;
  /** The reply to that last byte came. */
  dataEndAnswered = false;
  /** Octets after CRLF normalisation (what SIZE= announces and BDAT carries). */
  size = 0;
  /** Steps not yet written. `message` waits for the 354. */
  steps: Item[] = [];
  got354 = false;

  constructor(readonly message: OutgoingMessage) {}

  get settled(): boolean {
    return this.state === 'done' || this.state === 'failed';
  }

  fail(error: SmtpError): void {
    if (this.settled) return;
    this.state = 'failed';
    this.error = error;
    this.steps = [];
  }
}

export function replyError(
  message: string,
  phase: Phase,
  reply: Reply,
  command: string,
  transient?: boolean,
): SmtpError {
  const { code, enhancedCode, text: serverText } = reply;
  return new SmtpError(`${message}: ${formatReply(reply)}`, {
    phase,
    kind: 'reply',
    command,
    code,
    enhancedCode,
    serverText,
    ...(transient === undefined ? {} : { transient }),
  });
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

function item(c: Command, kind: ItemKind, extra: Partial<Item> = {}): Item {
  return {
    kind,
    phase: c.phase,
    bytes: cmd.encodeCommand(c),
    log: [c.redacted],
    command: c.redacted,
    ...extra,
  };
}

type State = 'greeting' | 'ehlo' | 'starttls' | 'upgrade' | 'ready' | 'closed';

export class Session {
  private state: State = 'greeting';
  private readonly awaiting: Item[] = [];
  private readonly txs: Transaction[] = [];
  private caps?: Capabilities;
  private authenticated = false;
  private authStarted = false;
  private saslQueue: Item[] = [];
  private mechanism?: AuthMechanism;
  private needRset = false;
  /** Must be written before anything else (the `.` that ends a DATA we did not want). */
  private urgent: Item[] = [];
  private quitRequested = false;
  private quitWritten = false;
  /** Can we still say QUIT (false after 421 or a connection failure). */
  private canTalk = true;
  private tls: boolean;
  fatal?: SmtpError;
  greeting?: Reply;

  constructor(private readonly opts: SessionOptions) {
    this.tls = opts.tls;
    // Validate our EHLO name before anything happens (throws SmtpError).
    cmd.ehlo(opts.clientName);
    this.awaiting.push({
      kind: 'greeting',
      phase: 'greeting',
      bytes: new Uint8Array(0),
      log: [],
      command: '',
    });
  }

  get capabilities(): Capabilities | undefined {
    return this.caps;
  }
  get authMechanism(): AuthMechanism | undefined {
    return this.authenticated ? this.mechanism : undefined;
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
        return this.quitWritten ? 'quit' : 'mail';
    }
  }
  /**
   * A message's last byte is among the written, unanswered items: replies before it may be held back by a server
   * that answers only once it has read the whole write, so waits use the data timeout.
   */
  get awaitingDataEnd(): boolean {
    return this.awaiting.some((i) => i.endsData);
  }
  /** Ready for more transactions without reconnecting. */
  get usable(): boolean {
    return (
      this.state === 'ready' && !this.fatal && this.canTalk && !this.quitWritten && this.awaiting.length === 0
    );
  }

  enqueue(message: OutgoingMessage): Transaction {
    const tx = new Transaction(message);
    if (this.fatal) tx.fail(this.fatal);
    else this.txs.push(tx);
    return tx;
  }

  /** Send QUIT once all queued work is done (pipelined with the last group when possible). */
  requestQuit(): void {
    this.quitRequested = true;
  }

  /** The next transaction on a kept session starts with RSET (pipelined with it). */
  markReused(): void {
    this.needRset = true;
  }

  next(): Action {
    const first = this.awaiting[0];
    if (first) return { type: 'read', item: first };
    if (this.urgent.length > 0 && this.canTalk) return this.write(this.urgent.splice(0));
    if (this.state === 'closed') return { type: 'done' };
    if (this.state === 'upgrade') return { type: 'starttls' };
    if (this.fatal || this.quitWritten) return this.finish();
    try {
      switch (this.state) {
        case 'greeting':
          return { type: 'done' }; // unreachable: greeting is awaited from the start
        case 'ehlo':
          return this.write([item(cmd.ehlo(this.opts.clientName), 'ehlo')]);
        case 'starttls':
          return this.write([item(cmd.starttls(), 'starttls')]);
        case 'ready':
          return this.plan();
      }
    } catch (e) {
      this.setFatal(asSmtpError(e, this.phase));
      return this.finish();
    }
  }

  private finish(): Action {
    if (this.canTalk && !this.quitWritten) return this.write([this.quitItem()]);
    this.state = 'closed';
    return { type: 'done' };
  }

  private quitItem(): Item {
    this.quitWritten = true;
    return item(cmd.quit(), 'quit');
  }

  private write(items: Item[]): Action {
    for (const it of items) {
      if (it.endsData && it.tx) it.tx.dataEndWritten = true;
      this.awaiting.push(it);
    }
    return { type: 'write', items };
  }

  /** The driver could not write `items` (the connection was already gone, or the deadline passed). */
  notWritten(items: Item[]): void {
    for (const it of items) if (it.endsData && it.tx) it.tx.dataEndWritten = false;
  }

  private get pipelining(): boolean {
    return !!this.caps?.pipelining && this.opts.pipelining !== false;
  }
  private get chunking(): boolean {
    return !!this.caps?.chunking && this.opts.chunking !== false;
  }

  /** Build the next group once the session is ready (EHLO done, TLS as required). */
  private plan(): Action {
    const group: Item[] = [];
    if (this.saslQueue.length > 0) return this.write([this.saslQueue.shift()!]);
    if (this.opts.auth && !this.authenticated) {
      if (this.authStarted)
        throw new SmtpError('authentication did not complete', { phase: 'auth', kind: 'protocol' });
      const authItem = this.authItem(this.opts.auth);
      this.authStarted = true;
      group.push(authItem);
      if (this.mechanism !== 'PLAIN' || !this.pipelining) return this.write(group);
    }
    let octets = 0;
    let prevInGroup = false;
    for (const tx of this.txs) {
      if (tx.settled) continue;
      if (tx.state === 'queued') {
        if (prevInGroup && octets >= MAX_GROUP_OCTETS) break;
        if (!this.prepare(tx)) continue;
        if (this.needRset || (prevInGroup && this.chunking)) {
          group.push(item(cmd.rset(), 'rset'));
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
            tx.fail(this.allRejected(tx));
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
    const pending = this.txs.some((t) => !t.settled && t.steps.length > 0);
    if (this.quitRequested && !pending && (group.length === 0 || this.pipelining))
      group.push(this.quitItem());
    if (group.length === 0) return { type: 'idle' };
    return this.write(group);
  }

  private authItem(creds: Credentials): Item {
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
    const mech = chooseMechanism(creds, offered);
    this.mechanism = mech;
    if (mech === 'PLAIN' && 'password' in creds) {
      return item(cmd.auth('PLAIN', plainInitialResponse(creds.username, creds.password)), 'auth');
    }
    if (mech === 'LOGIN' && 'password' in creds) {
      const [u, p] = loginResponses(creds.username, creds.password);
      this.saslQueue = [item(cmd.saslResponse(u), 'sasl'), item(cmd.saslResponse(p), 'sasl')];
      return item(cmd.auth('LOGIN'), 'auth');
    }
    if (mech === 'XOAUTH2' && 'accessToken' in creds) {
      return item(cmd.auth('XOAUTH2', xoauth2InitialResponse(creds.username, creds.accessToken)), 'auth');
    }
    throw new SmtpError(`AUTH ${mech} does not fit the credentials given`, { phase: 'auth', kind: 'usage' });
  }

  /** Check the message against the server's extensions and build its steps. False when it failed. */
  private prepare(tx: Transaction): boolean {
    const caps = this.caps!;
    const { envelope, content, info } = tx.message;
    const notSent = (message: string, phase: Phase = 'mail') =>
      tx.fail(new SmtpError(message, { phase, kind: 'usage', delivery: 'not-sent' }));
    try {
      if (envelope.to.length === 0) {
        notSent('the envelope has no recipients', 'rcpt');
        return false;
      }
      const eightBit = info?.eightBit ?? hasEightBit(content);
      const utf8 = !!info?.smtpUtf8 || [envelope.from, ...envelope.to].some(cmd.isNonAscii);
      const chunking = this.chunking;
      const params: cmd.EsmtpParam[] = [];
      tx.size = normalizedSize(content);
      if (caps.size !== undefined) {
        if (caps.size > 0 && tx.size > caps.size) {
          notSent(`message is ${tx.size} octets; the server accepts at most ${caps.size}`);
          return false;
        }
        params.push({ keyword: 'SIZE', value: String(tx.size) });
      }
      if (eightBit) {
        if (caps.eightBitMime) params.push({ keyword: 'BODY', value: '8BITMIME' });
        else if (chunking && caps.binaryMime) params.push({ keyword: 'BODY', value: 'BINARYMIME' });
        else {
          notSent('the message has 8-bit content but the server does not advertise 8BITMIME');
          return false;
        }
      }
      if (utf8) {
        if (!caps.smtpUtf8) {
          notSent(
            'the message needs SMTPUTF8 (non-ASCII address or headers) but the server does not advertise it',
          );
          return false;
        }
        params.push({ keyword: 'SMTPUTF8' });
      }
      const steps: Item[] = [item(cmd.mail(envelope.from, params), 'mail', { tx })];
      for (const to of envelope.to) steps.push(item(cmd.rcpt(to), 'rcpt', { tx, address: to }));
      const note = `[message: ${tx.size} octets]`;
      if (chunking) {
        const c = cmd.bdat(tx.size, true);
        steps.push({
          kind: 'bdat',
          phase: 'data',
          bytes: frameBdat(content, c.line, tx.size),
          log: [c.redacted, note],
          command: c.redacted,
          tx,
          endsData: true,
        });
      } else {
        steps.push(item(cmd.data(), 'data', { tx }));
        steps.push({
          kind: 'message',
          phase: 'data',
          bytes: encodeData(content),
          log: [note, '.'],
          command: '.',
          tx,
          endsData: true,
        });
      }
      tx.steps = steps;
      tx.state = 'active';
      return true;
    } catch (e) {
      tx.fail(asSmtpError(e, 'mail'));
      return false;
    }
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
    if (reply.code === 221 && it.kind !== 'quit' && it.kind !== 'greeting') {
      // 221 answers QUIT only: the server is closing, and this reply is not the one `it` waits for (a server that
      // never answers the final dot but answers the pipelined QUIT). Whatever was written is unanswered: a
      // message whose end of data went out is `unknown`, never accepted.
      this.abort(
        replyError('server closed the connection instead of answering', it.phase, reply, it.command, true),
      );
      return;
    }
    if (reply.code === 421 && it.kind !== 'quit') {
      // The server is closing the channel: nothing after this will be answered.
      const err = replyError('server closing the connection', it.phase, reply, it.command, true);
      this.canTalk = false;
      this.setFatal(err);
      // Nothing written after the command it answers was processed: those messages stay not-sent.
      this.awaiting.length = 0;
      return;
    }
    switch (it.kind) {
      case 'greeting':
        this.greeting = reply;
        if (reply.code === 220) this.state = 'ehlo';
        else this.setFatal(replyError('server refused the session', 'greeting', reply, ''));
        return;
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
        this.onTransactionReply(reply, it);
        return;
    }
  }

  private onEhlo(reply: Reply, it: Item): void {
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

  private onAuth(reply: Reply, it: Item): void {
    if (this.authenticated) return;
    if (reply.code === 235) {
      this.authenticated = true;
      this.saslQueue = [];
      return;
    }
    if (reply.code === 334) {
      if (this.mechanism === 'LOGIN' && this.saslQueue.length > 0) return; // plan() writes the next answer
      if (this.mechanism === 'XOAUTH2' && it.kind === 'auth') {
        // Error challenge (base64 JSON): answer with an empty line, the server then sends 535.
        this.saslQueue = [item(cmd.saslResponse(''), 'sasl')];
        this.xoauthError = reply;
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
      this.canTalk = false;
      return;
    }
    this.saslQueue = [];
    const err = replyError('authentication failed', 'auth', reply, it.command);
    if (this.xoauthError) err.serverText = `${reply.text}\n${decodeChallenge(this.xoauthError.text)}`;
    this.setFatal(err);
  }
  private xoauthError?: Reply;

  private onTransactionReply(reply: Reply, it: Item): void {
    const tx = it.tx!;
    const ok = reply.code >= 200 && reply.code < 300;
    if (it.kind === 'rcpt') {
      // Recorded even after the transaction failed on our side: the server may still hold the recipients.
      const r: RecipientResult = { address: it.address!, code: reply.code, message: reply.text };
      if (reply.enhancedCode) r.enhancedCode = reply.enhancedCode;
      (ok ? tx.accepted : tx.rejected).push(r);
      return;
    }
    if (it.endsData) tx.dataEndAnswered = true;
    if (it.kind === 'data' && reply.code === 354) {
      tx.got354 = true;
      if (tx.settled && tx.accepted.length > 0) {
        // Failed on our side (e.g. AUTH refused with MAIL, RCPT, DATA pipelined behind it) but the server took
        // the recipients: a `.` now would deliver an empty message. Close instead: a server discards a message
        // whose data never ended (RFC 5321 §4.1.1.4).
        this.abort(
          new SmtpError('closed the connection in DATA to abandon a transaction that had already failed', {
            phase: 'data',
            kind: 'protocol',
          }),
        );
        return;
      }
      if (tx.settled || tx.accepted.length === 0) {
        // A server that says 354 with nothing to deliver to (or after a failure): end the data at once,
        // keep the failure. The `.` goes out before anything else.
        if (!tx.settled) tx.fail(this.allRejected(tx));
        this.urgent.push({ kind: 'message', phase: 'data', bytes: DOT_LINE, log: ['.'], command: '.', tx });
      }
      return;
    }
    if (tx.settled) {
      // Replies to pipelined commands after a failure (503/554): expected. But a server that accepted the data
      // of a transaction we had given up on has the message: say so (it must never be resent).
      if (it.endsData) {
        tx.mailAccepted = false;
        if (ok && tx.accepted.length > 0 && tx.error) tx.error = tx.error.withDelivery('accepted', 'data');
      }
      return;
    }
    switch (it.kind) {
      case 'mail':
        if (ok) tx.mailAccepted = true;
        else tx.fail(replyError('sender refused', 'mail', reply, it.command));
        return;
      case 'data':
        // DATA refused (no 354).
        if (tx.accepted.length === 0) tx.fail(this.allRejected(tx, reply));
        else tx.fail(replyError('DATA refused', 'data', reply, it.command));
        this.needRset = this.needRset || tx.mailAccepted;
        return;
      case 'message':
      case 'bdat':
        if (ok && tx.accepted.length > 0) {
          tx.state = 'done';
          tx.mailAccepted = false;
          const result: TransactionResult = { accepted: tx.accepted, rejected: tx.rejected, response: reply };
          const id = parseQueueId(reply);
          if (id) result.queueId = id;
          tx.result = result;
          return;
        }
        if (tx.accepted.length === 0) tx.fail(this.allRejected(tx, reply));
        else tx.fail(replyError('message refused', 'data', reply, it.command));
        if (it.kind === 'message') tx.mailAccepted = false; // the end of data resets the server's transaction
        this.needRset = this.needRset || tx.mailAccepted;
        return;
    }
  }

  private allRejected(tx: Transaction, fallback?: Reply): SmtpError {
    const first = tx.rejected[0];
    const list = tx.rejected.map((r) => `${r.address} (${r.code})`).join(', ');
    return new SmtpError(`all recipients were rejected: ${list || 'no recipient accepted'}`, {
      phase: 'rcpt',
      kind: 'reply',
      command: first && `RCPT TO:<${first.address}>`,
      code: first?.code ?? fallback?.code,
      enhancedCode: first?.enhancedCode ?? fallback?.enhancedCode,
      serverText: first?.message ?? fallback?.text,
    });
  }

  private setFatal(err: SmtpError): void {
    if (!this.fatal) this.fatal = err;
    for (const tx of this.txs) if (!tx.settled) tx.fail(err.withDelivery('not-sent'));
    this.saslQueue = [];
  }

  /**
   * The connection failed (EOF, reset, timeout, protocol violation, abort). Every unsettled transaction gets the
   * error with its delivery verdict: `unknown` when its last byte was written and no final reply came.
   */
  abort(err: SmtpError): void {
    for (const tx of this.txs) {
      // Last byte written, no final reply: the message's fate is decided in its data phase, and unknown. That
      // holds for a transaction already failed by a session error too (its BDAT went out behind a refused AUTH).
      const unknown = tx.dataEndWritten && !tx.dataEndAnswered;
      if (!tx.settled) tx.fail(unknown ? err.withDelivery('unknown', 'data') : err.withDelivery('not-sent'));
      else if (unknown && tx.error?.delivery === 'not-sent')
        tx.error = tx.error.withDelivery('unknown', 'data');
    }
    if (!this.fatal) this.fatal = err;
    this.canTalk = false;
    this.awaiting.length = 0;
    this.state = 'closed';
  }

  /** Forget settled transactions (kept sessions). */
  prune(): void {
    for (let i = this.txs.length - 1; i >= 0; i--) if (this.txs[i]!.settled) this.txs.splice(i, 1);
  }
}

const DOT_LINE = new TextEncoder().encode('.\r\n');

function decodeChallenge(text: string): string {
  try {
    return Buffer.from(text.trim(), 'base64').toString('utf8');
  } catch {
    return '';
  }
}

export function asSmtpError(e: unknown, phase: Phase): SmtpError {
  if (e instanceof SmtpError) return e;
  return new SmtpError(e instanceof Error ? e.message : String(e), { phase, kind: 'usage', cause: e });
}
