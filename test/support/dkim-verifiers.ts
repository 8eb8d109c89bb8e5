/**
 * Two independent DKIM verifiers for the signer's tests: `mailauth` (npm) with the public keys handed to its
 * resolver, and Debian's `python3-dkim` (dkimpy, run by /usr/bin/python3) with a `dnsfunc` that answers from the
 * same records. No DNS is queried: `records` maps `<selector>._domainkey.<domain>` to its TXT record.
 * A missing python3-dkim is an error (a test that needs a tool fails without it), never a skip.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';

export type DkimRecords = Record<string, string>;

export interface VerifierResult {
  /** One entry per DKIM-Signature, in header order: `pass` or the verifier's failure text. */
  results: Array<{ domain: string; selector: string; algorithm: string; status: string; info?: string }>;
}

export async function verifyWithMailauth(message: Uint8Array, records: DkimRecords): Promise<VerifierResult> {
  const resolver = async (name: string, type: string) => {
    const rr = records[name.toLowerCase()];
    if (type !== 'TXT' || rr === undefined) {
      const err = new Error(`no ${type} record for ${name}`) as NodeJS.ErrnoException;
      err.code = 'ENOTFOUND';
      throw err;
    }
    return [[rr]];
  };
  const out = await dkimVerify(Buffer.from(message), { resolver });
  return {
    results: out.results.map((r) => ({
      domain: r.signingDomain ?? '',
      selector: r.selector ?? '',
      algorithm: (r as { algo?: string }).algo ?? r.algorithm ?? '', // runtime: algo (the .d.ts says algorithm)
      status: r.status.result,
      ...(r.status.comment ? { info: String(r.status.comment) } : {}),
    })),
  };
}

/** The interpreter with Debian's python3-dkim (the pyenv python3 on PATH does not have it). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

const PY = `
import json, sys
import dkim
records = json.loads(sys.argv[1])
msg = sys.stdin.buffer.read()
def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    rr = records.get(n.rstrip('.').lower())
    return rr.encode() if rr is not None else None
d = dkim.DKIM(msg)
sigs = [v for (k, v) in d.headers if k.lower() == b'dkim-signature']
out = []
for i in range(len(sigs)):
    info = None
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        ok, info = False, str(e)
    tags = dkim.util.parse_tag_value(sigs[i])
    r = {'domain': tags[b'd'].decode(), 'selector': tags[b's'].decode(), 'algorithm': tags[b'a'].decode(),
         'status': 'pass' if ok else 'fail'}
    if info:
        r['info'] = info
    out.append(r)
print(json.dumps({'results': out}))
`;

export async function verifyWithPythonDkim(
  message: Uint8Array,
  records: DkimRecords,
): Promise<VerifierResult> {
  if (!existsSync(DEBIAN_PYTHON))
    throw new Error(`${DEBIAN_PYTHON} is missing (apt-get install -y python3-dkim)`);
  const child = spawn(DEBIAN_PYTHON, ['-c', PY, JSON.stringify(records)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  child.stdin.end(Buffer.from(message));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const stderr = Buffer.concat(err).toString();
  if (code !== 0) {
    const hint = /No module named 'dkim'/.test(stderr) ? ' (apt-get install -y python3-dkim)' : '';
    throw new Error(`python3-dkim verifier exited ${code}${hint}: ${stderr.slice(0, 2000)}`);
  }
  return JSON.parse(Buffer.concat(out).toString()) as VerifierResult;
}
