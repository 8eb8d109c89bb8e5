/**
 * Fixtures the tests share: outgoing messages, test credentials, and the error a call must fail with (the test
 * fails when it succeeds, or fails with anything else).
 */
import { expect } from 'vitest';
import type { OutgoingMessage } from '../../functions/smtp/types.ts';

/** Credentials the scripted servers and smtp-server accept. */
export const AUTH = { username: 'u', password: 'p' };

/** A message from a@example.com (to b@example.com unless `to` says otherwise). */
export function outgoing(
  to: string | string[] = 'b@example.com',
  content = 'Subject: s\r\n\r\nbody\r\n',
): OutgoingMessage {
  return {
    envelope: { from: 'a@example.com', to: typeof to === 'string' ? [to] : to },
    content: new TextEncoder().encode(content),
  };
}

/** Message number `n` (subject `m<n>`, body `body <n>`), told apart at the server. */
export function numbered(n: number, to: string | string[] = 'b@example.com'): OutgoingMessage {
  return outgoing(to, `Subject: m${n}\r\n\r\nbody ${n}\r\n`);
}

// biome-ignore lint/suspicious/noExplicitAny: any error class
type ErrorClass<E> = abstract new (...args: any[]) => E;

/** The error `p` rejects with, checked to be a `type`. */
export async function rejection<E>(p: Promise<unknown>, type: ErrorClass<E>): Promise<E> {
  const e = await p.then(
    () => expect.unreachable('expected a failure'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(type);
  return e as E;
}

/** The error `fn` throws, checked to be a `type`. */
export function thrown<E>(fn: () => unknown, type: ErrorClass<E>): E {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as E;
  }
  return expect.unreachable('expected a failure');
}
