/**
 * `npm run bench -- --dkim`: what DKIM signing costs per message, as ratios against composing the same message
 * unsigned (the baseline, measured in the same run, rounds interleaved). Keys: RSA-2048, Ed25519, and both (a dual
 * signature). Messages: the ~2 KB text message and one with a 256 KiB attachment.
 */
import { generateKeyPairSync } from 'node:crypto';
import { type DkimSigner, dkimSigner, signMessage } from '../functions/mime/dkim.ts';
import { compose } from '../functions/mime/index.ts';
import type { MessageInput } from '../functions/mime/types.ts';
import { summarize } from './stats.ts';

export interface DkimBenchRow {
  message: string;
  variant: string;
  medianUs: number;
  p90Us: number;
  /** Median per-message time over the unsigned compose of the same message. */
  ratio: number;
}

const pem = (k: { export(o: { format: 'pem'; type: 'pkcs8' }): string | Buffer }) =>
  String(k.export({ format: 'pem', type: 'pkcs8' }));

export function runDkimBench(rounds: number, perRound: number): DkimBenchRow[] {
  const rsa = dkimSigner({
    domain: 'example.com',
    selector: 'rsa',
    privateKey: pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
  });
  const ed = dkimSigner({
    domain: 'example.com',
    selector: 'ed',
    privateKey: pem(generateKeyPairSync('ed25519').privateKey),
  });
  const text = 'This message is sent by the benchmark harness, about two kilobytes of plain text.\n'.repeat(
    24,
  );
  const messages: Record<string, MessageInput> = {
    '2 KB text': { from: 'noreply@example.com', to: 'team@example.com', subject: 'Bench', text },
    '256 KiB attachment': {
      from: 'noreply@example.com',
      to: 'team@example.com',
      subject: 'Bench',
      text,
      attachments: [{ filename: 'a.bin', content: new Uint8Array(256 * 1024).fill(7) }],
    },
  };
  const variants: Record<string, DkimSigner[]> = {
    'unsigned (baseline)': [],
    'rsa-sha256 (2048)': [rsa],
    'ed25519-sha256': [ed],
    'dual (ed25519 + rsa)': [ed, rsa],
  };
  const rows: DkimBenchRow[] = [];
  for (const [name, input] of Object.entries(messages)) {
    const samples = new Map<string, number[]>(Object.keys(variants).map((v) => [v, []]));
    for (let r = 0; r < rounds; r++) {
      for (const [variant, signers] of Object.entries(variants)) {
        const t0 = performance.now();
        for (let i = 0; i < perRound; i++) signMessage(compose(input), signers);
        samples.get(variant)!.push(((performance.now() - t0) * 1000) / perRound);
      }
    }
    const base = summarize(samples.get('unsigned (baseline)')!).median;
    for (const [variant, s] of samples) {
      const sum = summarize(s);
      rows.push({ message: name, variant, medianUs: sum.median, p90Us: sum.p90, ratio: sum.median / base });
    }
  }
  return rows;
}
