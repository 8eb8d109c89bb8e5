/**
 * One mail transaction (MAIL … end of data) and the items a session writes. No I/O. The session (`session.ts`)
 * decides WHEN steps are written; the transaction builds its steps from the server's extensions and reads the
 * replies to them, telling the session what follows (an RSET, an immediate end of data, or closing the channel).
 */

import type { Command } from './command.ts';
import * as cmd from './command.ts';
import { encodeData, frameBdat, hasEightBit, normalizedSize } from './data.ts';
import { asSmtpError, replyError, SmtpError } from './error.ts';
import { parseQueueId } from './reply.ts';
import type {
  Capabilities,
  Delivery,
  MessageInfo,
  OutgoingMessage,
  Phase,
  RecipientResult,
  Reply,
  TransactionResult,
} from './types.ts';

/** What every written item carries: its bytes, redacted transcript lines, and the redacted command for errors. */
interface Written {
  phase: Phase;
  bytes: Uint8Array;
  log: string[];
  command: string;
}

/** A session command, not tied to a transaction. */
export type SessionItem = Written & { kind: 'ehlo' | 'starttls' | 'auth' | 'sasl' | 'rset' | 'quit' };

/** A transaction's step. `message`/`bdat` carry the last byte of the message: their reply is the final reply. */
export type TransactionItem = Written &
  (
    | { kind: 'mail' | 'data'; tx: Transaction }
    | { kind: 'rcpt'; tx: Transaction; address: string }
    | { kind: 'message' | 'bdat'; tx: Transaction }
    /** The `.` that ends at once a DATA we did not want (no recipient accepted): never delivers anything. */
    | { kind: 'abandon-data'; tx: Transaction }
  );

/** One unit of a group: something written that earns one reply, or the greeting (awaited, never written). */
export type Item = { kind: 'greeting'; phase: 'greeting' } | SessionItem | TransactionItem;
export type WrittenItem = SessionItem | TransactionItem;
export type DataEndItem = Extract<TransactionItem, { kind: 'message' | 'bdat' }>;

/** Its reply is the final reply to the message (the `.` or BDAT LAST). */
export function endsData(it: Item): it is DataEndItem {
  return it.kind === 'message' || it.kind === 'bdat';
}

export function sessionItem(c: Command & { kind: SessionItem['kind'] }): SessionItem {
  return {
    kind: c.kind,
    phase: c.phase,
    bytes: cmd.encodeCommand(c),
    log: [c.redacted],
    command: c.redacted,
  };
}

function written(c: Command): Written {
  return { phase: c.phase, bytes: cmd.encodeCommand(c), log: [c.redacted], command: c.redacted };
}

/**
 * Where the transaction stands: not yet started, started with the steps not yet written (`message` waits for the
 * 354), or settled with its result or its error.
 */
export type TransactionState =
  | { is: 'queued' }
  | { is: 'active'; steps: TransactionItem[] }
  | { is: 'done'; result: TransactionResult }
  | { is: 'failed'; error: SmtpError };

/** The message's last byte (`.` or BDAT LAST chunk): not handed to the socket, handed over, answered. */
export type DataEnd = 'unwritten' | 'written' | 'answered';

/** What the session does after a transaction read a reply. */
export type FollowUp =
  | 'none'
  /** The server's transaction is still open (MAIL accepted): the next group starts with RSET. */
  | 'rset'
  /** A 354 with no recipient accepted: write the `.` at once, before anything else. */
  | 'end-data'
  /** A 354 for a transaction that failed on our side but whose recipients the server took: close the channel. */
  | 'abandon';

export class Transaction {
  state: TransactionState = { is: 'queued' };
  accepted: RecipientResult[] = [];
  rejected: RecipientResult[] = [];
  /** The server answered 2xx to MAIL (its transaction is open until the end of data or RSET). */
  mailAccepted = false;
  got354 = false;
  dataEnd: DataEnd = 'unwritten';
  /** Octets after CRLF normalisation (what SIZE= announces and BDAT carries). */
  size = 0;
  /** The message's `withoutSmtpUtf8` form went on the wire. */
  private usedWithoutSmtpUtf8 = false;

  constructor(readonly message: OutgoingMessage) {}

  get settled(): boolean {
    return this.state.is === 'done' || this.state.is === 'failed';
  }
  get result(): TransactionResult | undefined {
    return this.state.is === 'done' ? this.state.result : undefined;
  }
  get error(): SmtpError | undefined {
    return this.state.is === 'failed' ? this.state.error : undefined;
  }
  /** Steps not yet written (none unless active). */
  get steps(): TransactionItem[] {
    return this.state.is === 'active' ? this.state.steps : [];
  }

  fail(error: SmtpError): void {
    if (this.settled) return;
    this.state = { is: 'failed', error };
  }

  /** A failed transaction's verdict changes (the server answered, or did not, after we gave up). */
  reclassify(delivery: Delivery, phase: Phase): void {
    if (this.state.is === 'failed')
      this.state = { is: 'failed', error: this.state.error.withDelivery(delivery, phase) };
  }

  /** Check the message against the server's extensions and build its steps. False (and failed) when it cannot go. */
  start(caps: Capabilities, chunking: boolean): boolean {
    try {
      this.state = { is: 'active', steps: this.buildSteps(caps, chunking) };
      return true;
    } catch (e) {
      this.fail(asSmtpError(e, 'mail'));
      return false;
    }
  }

  /**
   * What goes on the wire: the message, or its `withoutSmtpUtf8` form when it needs SMTPUTF8 and this server
   * does not offer it (decided here, after EHLO: no extra round trip).
   */
  private sentForm(caps: Capabilities): { content: Uint8Array; info?: MessageInfo } {
    const m = this.message;
    if (caps.smtpUtf8 || !m.withoutSmtpUtf8 || !needsSmtpUtf8(m.envelope, m.info)) return m;
    this.usedWithoutSmtpUtf8 = true;
    return m.withoutSmtpUtf8;
  }

  private buildSteps(caps: Capabilities, chunking: boolean): TransactionItem[] {
    const { envelope } = this.message;
    if (envelope.to.length === 0) throw notSent('the envelope has no recipients', 'rcpt');
    const { content, info } = this.sentForm(caps);
    this.size = normalizedSize(content);
    const params = this.mailParams(caps, chunking, content, info);
    const steps: TransactionItem[] = [
      { kind: 'mail', tx: this, ...written(cmd.mail(envelope.from, params)) },
    ];
    for (const to of envelope.to)
      steps.push({ kind: 'rcpt', tx: this, address: to, ...written(cmd.rcpt(to)) });
    const note = `[message: ${this.size} octets]`;
    if (chunking) {
      const c = cmd.bdat(this.size, true);
      const bytes = frameBdat(content, c.line, this.size);
      steps.push({
        kind: 'bdat',
        tx: this,
        phase: 'data',
        bytes,
        log: [c.redacted, note],
        command: c.redacted,
      });
    } else {
      steps.push({ kind: 'data', tx: this, ...written(cmd.data()) });
      const bytes = encodeData(content);
      steps.push({ kind: 'message', tx: this, phase: 'data', bytes, log: [note, '.'], command: '.' });
    }
    return steps;
  }

  /** SIZE, BODY and SMTPUTF8 for MAIL; throws (not-sent) when the server lacks what the message needs. */
  private mailParams(
    caps: Capabilities,
    chunking: boolean,
    content: Uint8Array,
    info: MessageInfo | undefined,
  ): cmd.EsmtpParam[] {
    const { envelope } = this.message;
    const params: cmd.EsmtpParam[] = [];
    if (caps.size !== undefined) {
      if (caps.size > 0 && this.size > caps.size) {
        throw notSent(`message is ${this.size} octets; the server accepts at most ${caps.size}`);
      }
      params.push({ keyword: 'SIZE', value: String(this.size) });
    }
    if (info?.eightBit ?? hasEightBit(content)) {
      if (caps.eightBitMime) params.push({ keyword: 'BODY', value: '8BITMIME' });
      else if (chunking && caps.binaryMime) params.push({ keyword: 'BODY', value: 'BINARYMIME' });
      else throw notSent('the message has 8-bit content but the server does not advertise 8BITMIME');
    }
    if (needsSmtpUtf8(envelope, info)) {
      if (!caps.smtpUtf8) {
        throw notSent(
          'the message needs SMTPUTF8 (non-ASCII address or headers) but the server does not advertise it',
        );
      }
      params.push({ keyword: 'SMTPUTF8' });
    }
    return params;
  }

  /** Read the reply to one of this transaction's items; says what the session must do next. */
  onReply(it: TransactionItem, reply: Reply): FollowUp {
    const ok = reply.code >= 200 && reply.code < 300;
    if (it.kind === 'rcpt') {
      // Recorded even after the transaction failed on our side: the server may still hold the recipients.
      const r: RecipientResult = { address: it.address, code: reply.code, message: reply.text };
      if (reply.enhancedCode) r.enhancedCode = reply.enhancedCode;
      (ok ? this.accepted : this.rejected).push(r);
      return 'none';
    }
    if (endsData(it)) this.dataEnd = 'answered';
    if (it.kind === 'data' && reply.code === 354) return this.on354();
    if (this.settled) {
      // Replies to pipelined commands after a failure (503/554): expected. But a server that accepted the data
      // of a transaction we had given up on has the message: say so (it must never be resent).
      if (endsData(it)) {
        this.mailAccepted = false;
        if (ok && this.accepted.length > 0) this.reclassify('accepted', 'data');
      }
      return 'none';
    }
    switch (it.kind) {
      case 'mail':
        if (ok) this.mailAccepted = true;
        else this.fail(replyError('sender refused', 'mail', reply, it.command));
        return 'none';
      case 'data':
        // DATA refused (no 354).
        if (this.accepted.length === 0) this.fail(this.allRejected(reply));
        else this.fail(replyError('DATA refused', 'data', reply, it.command));
        return this.mailAccepted ? 'rset' : 'none';
      case 'message':
      case 'bdat':
        return this.onFinalReply(it, reply, ok);
      default:
        return 'none';
    }
  }

  private on354(): FollowUp {
    this.got354 = true;
    // Failed on our side (e.g. AUTH refused with MAIL, RCPT, DATA pipelined behind it) but the server took the
    // recipients: a `.` now would deliver an empty message. Close instead: a server discards a message whose
    // data never ended (RFC 5321 §4.1.1.4).
    if (this.settled && this.accepted.length > 0) return 'abandon';
    if (this.settled || this.accepted.length === 0) {
      // A server that says 354 with nothing to deliver to (or after a failure): end the data at once, keep the
      // failure.
      if (!this.settled) this.fail(this.allRejected());
      return 'end-data';
    }
    return 'none';
  }

  /** The reply to the `.` or BDAT LAST: the only reply that may say the message was accepted. */
  private onFinalReply(it: DataEndItem, reply: Reply, ok: boolean): FollowUp {
    if (ok && this.accepted.length > 0) {
      this.mailAccepted = false;
      const result: TransactionResult = { accepted: this.accepted, rejected: this.rejected, response: reply };
      const id = parseQueueId(reply);
      if (id) result.queueId = id;
      if (this.usedWithoutSmtpUtf8) result.withoutSmtpUtf8 = true;
      this.state = { is: 'done', result };
      return 'none';
    }
    if (this.accepted.length === 0) this.fail(this.allRejected(reply));
    else this.fail(replyError('message refused', 'data', reply, it.command));
    if (it.kind === 'message') this.mailAccepted = false; // the end of data resets the server's transaction
    return this.mailAccepted ? 'rset' : 'none';
  }

  /** The error for a transaction none of whose recipients was accepted. */
  allRejected(fallback?: Reply): SmtpError {
    const first = this.rejected[0];
    const list = this.rejected.map((r) => `${r.address} (${r.code})`).join(', ');
    return new SmtpError(`all recipients were rejected: ${list || 'no recipient accepted'}`, {
      phase: 'rcpt',
      kind: 'reply',
      command: first && `RCPT TO:<${first.address}>`,
      code: first?.code ?? fallback?.code,
      enhancedCode: first?.enhancedCode ?? fallback?.enhancedCode,
      serverText: first?.message ?? fallback?.text,
    });
  }
}

function needsSmtpUtf8(envelope: OutgoingMessage['envelope'], info: MessageInfo | undefined): boolean {
  return !!info?.smtpUtf8 || [envelope.from, ...envelope.to].some(cmd.isNonAscii);
}

function notSent(message: string, phase: Phase = 'mail'): SmtpError {
  return new SmtpError(message, { phase, kind: 'usage', delivery: 'not-sent' });
}
