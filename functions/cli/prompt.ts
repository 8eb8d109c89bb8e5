/**
 * Reads a secret from the terminal with echo off (raw mode; nothing is echoed, not even `*`).
 * Only called when stdin is a TTY. Ctrl-C aborts (exit 130 by the caller), Ctrl-D/Enter ends input.
 */
import type { ReadStream } from 'node:tty';

export class PromptAborted extends Error {
  override readonly name = 'PromptAborted';
}

export function readHiddenLine(
  prompt: string,
  input: ReadStream,
  output: { write(s: string): unknown },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const wasRaw = input.isRaw;
    let value = '';
    const finish = (err: Error | null) => {
      input.off('data', onData);
      input.setRawMode(wasRaw);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(null);
        if (ch === '\u0003') return finish(new PromptAborted('aborted at the password prompt'));
        if (ch === '\u007f' || ch === '\b') {
          value = [...value].slice(0, -1).join('');
          continue;
        }
        if (ch === '\u0015') {
          value = ''; // Ctrl-U: clear the line
          continue;
        }
        if (ch >= ' ') value += ch;
      }
    };
    // Echo off BEFORE the prompt shows: whatever is typed once it is visible is never echoed.
    input.setRawMode(true);
    input.on('data', onData);
    input.resume();
    output.write(prompt);
  });
}
