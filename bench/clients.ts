/**
 * The two clients under comparison, behind one small interface so every scenario drives them the
 * same way: our client (`functions/smtp`) and nodemailer 10 (devDependency, used only here).
 */
import nodemailer from 'nodemailer';
import type { ConnectionOptions, Deadline, OutgoingMessage } from '../functions/smtp/types.ts';
import type { BenchMessage } from './message.ts';
import { BENCH_AUTH, TLS_MATERIAL } from './peers.ts';

export interface Endpoint {
  port: number;
  security: 'starttls' | 'tls';
}

export interface SendResult {
  /** Round trips the client itself reports (ours only). */
  ownRoundTrips?: number;
}

export interface BatchResult {
  delivered: number;
  ownRoundTrips?: number;
}

export interface WarmSession {
  send(msg: BenchMessage): Promise<SendResult>;
  close(): Promise<void>;
}

export interface BenchClient {
  name: string;
  /** One message on a fresh connection: connect … QUIT (or the client's own way to end). */
  sendOne(ep: Endpoint, msg: BenchMessage): Promise<SendResult>;
  /** All messages over one session. */
  sendBatch(ep: Endpoint, msgs: BenchMessage[]): Promise<BatchResult>;
  /** A session kept open between sends. */
  openWarm(ep: Endpoint): WarmSession;
}

/** Both clients: connect to 127.0.0.1, verify the dev CA for the name `localhost`, EHLO as localhost. */
const HOST = '127.0.0.1';
const SERVERNAME = 'localhost';

// ---------------------------------------------------------------------------------------------
// nodemailer 10
// ---------------------------------------------------------------------------------------------

function nodemailerOptions(ep: Endpoint) {
  return {
    host: HOST,
    port: ep.port,
    secure: ep.security === 'tls',
    requireTLS: true,
    name: SERVERNAME,
    tls: { ca: TLS_MATERIAL.ca, servername: SERVERNAME },
    auth: { user: BENCH_AUTH.username, pass: BENCH_AUTH.password },
  };
}

function nodemailerMail(msg: BenchMessage) {
  return { envelope: { from: msg.envelope.from, to: msg.envelope.to }, raw: Buffer.from(msg.content) };
}

export const nodemailerClient: BenchClient = {
  name: 'nodemailer 10',
  async sendOne(ep, msg) {
    const transport = nodemailer.createTransport(nodemailerOptions(ep));
    try {
      await transport.sendMail(nodemailerMail(msg));
    } finally {
      transport.close();
    }
    return {};
  },
  async sendBatch(ep, msgs) {
    const transport = nodemailer.createTransport({
      ...nodemailerOptions(ep),
      pool: true,
      maxConnections: 1,
      maxMessages: msgs.length + 1,
    });
    try {
      const settled = await Promise.allSettled(msgs.map((m) => transport.sendMail(nodemailerMail(m))));
      return { delivered: settled.filter((s) => s.status === 'fulfilled').length };
    } finally {
      transport.close();
    }
  },
  openWarm(ep) {
    const transport = nodemailer.createTransport({
      ...nodemailerOptions(ep),
      pool: true,
      maxConnections: 1,
      maxMessages: 1000,
    });
    return {
      async send(msg) {
        await transport.sendMail(nodemailerMail(msg));
        return {};
      },
      async close() {
        transport.close();
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// ours (functions/smtp), loaded lazily so the harness runs while it is being written
// ---------------------------------------------------------------------------------------------

/** The parts of SendOutcome / BatchOutcome (functions/smtp/client.ts) the benchmark reads. */
interface SendOutcome {
  roundTrips: number;
}
interface BatchOutcome {
  results: Array<{ ok: boolean }>;
  roundTrips: number;
}

interface OurSmtpModule {
  sendMail(opts: ConnectionOptions & Deadline, msg: OutgoingMessage): Promise<SendOutcome>;
  sendBatch(opts: ConnectionOptions & Deadline, msgs: OutgoingMessage[]): Promise<BatchOutcome>;
  SmtpClient: new (
    opts: ConnectionOptions & { reuse?: boolean; idleTimeoutMs?: number },
  ) => {
    send(msg: OutgoingMessage, d?: Deadline): Promise<SendOutcome>;
    close(): Promise<void>;
  };
}

function ourOptions(ep: Endpoint): ConnectionOptions {
  return {
    host: HOST,
    port: ep.port,
    security: ep.security,
    ca: TLS_MATERIAL.ca,
    servername: SERVERNAME,
    clientName: SERVERNAME,
    auth: { username: BENCH_AUTH.username, password: BENCH_AUTH.password },
  };
}

function ourMessage(msg: BenchMessage): OutgoingMessage {
  return { envelope: msg.envelope, content: msg.content };
}

/** Load our client; resolves to a reason string when it is not usable yet. */
export async function loadOurClient(): Promise<BenchClient | string> {
  const specifier = '../functions/smtp/index.ts';
  let mod: Partial<OurSmtpModule>;
  try {
    mod = (await import(specifier)) as Partial<OurSmtpModule>;
  } catch (err) {
    return `functions/smtp/index.ts cannot be loaded (${(err as Error).message.split('\n')[0]})`;
  }
  const { sendMail, sendBatch, SmtpClient } = mod;
  if (typeof sendMail !== 'function') return 'functions/smtp/index.ts does not export sendMail yet';
  return {
    name: 'ours',
    async sendOne(ep, msg) {
      const outcome = await sendMail(ourOptions(ep), ourMessage(msg));
      return { ownRoundTrips: outcome.roundTrips };
    },
    async sendBatch(ep, msgs) {
      if (typeof sendBatch === 'function') {
        const outcome = await sendBatch(ourOptions(ep), msgs.map(ourMessage));
        return { delivered: outcome.results.filter((r) => r.ok).length, ownRoundTrips: outcome.roundTrips };
      }
      if (!SmtpClient) throw new Error('neither sendBatch nor SmtpClient is exported');
      const client = new SmtpClient({ ...ourOptions(ep), reuse: true });
      let delivered = 0;
      let roundTrips = 0;
      try {
        for (const m of msgs) {
          const outcome = await client.send(ourMessage(m));
          delivered++;
          roundTrips += outcome.roundTrips;
        }
      } finally {
        await client.close();
      }
      return { delivered, ownRoundTrips: roundTrips };
    },
    openWarm(ep) {
      if (!SmtpClient) throw new Error('SmtpClient is not exported yet');
      const client = new SmtpClient({ ...ourOptions(ep), reuse: true });
      return {
        async send(msg) {
          const outcome = await client.send(ourMessage(msg));
          return { ownRoundTrips: outcome.roundTrips };
        },
        close: () => client.close(),
      };
    },
  };
}
