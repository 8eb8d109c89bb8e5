/**
 * The bundled handler's entry (functions/handlers/index.ts → connect-ahead.ts) opens the TCP connection to the
 * configuration's `smtp` server first, while the rest of the code is still loading: the server accepts it (and
 * greets) inside init, i.e. before `import()` of the bundle resolves; the session's first command (EHLO) comes only
 * after init (prewarm's turn), so init carries no SMTP or TLS work. Without a usable `smtp` server in the
 * configuration, or with `SMTP_REUSE=false`, nothing is opened; a connection opened for a configuration that then
 * fails validation is closed without a byte.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHandler, ROOT } from '../../scripts/build.ts';

const outdir = `dist/test-connect-ahead-${process.pid}`;
let bundle: string;

interface Accepted {
  at: number;
  firstByteAt?: number;
  received: string;
  closed: Promise<void>;
}
let server: net.Server;
let port: number;
const accepted: Accepted[] = [];

beforeAll(async () => {
  bundle = (await buildHandler({ outdir })).outfile;
  server = net.createServer((socket) => {
    let closedResolve = () => {};
    const a: Accepted = { at: Date.now(), received: '', closed: new Promise((r) => (closedResolve = r)) };
    accepted.push(a);
    socket.write('220 ahead.test ESMTP\r\n');
    socket.on('data', (d) => {
      a.firstByteAt ??= Date.now();
      a.received += d.toString('latin1');
      if (/^EHLO /m.test(a.received)) socket.end('421 4.3.2 test over\r\n');
    });
    socket.on('error', () => {});
    socket.on('close', () => closedResolve());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
}, 120_000);

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(join(ROOT, outdir), { recursive: true, force: true });
});

/** Import the bundle in a fresh Node process; its clock around the import; it stays 300 ms for prewarm's turn. */
function coldImport(
  env: NodeJS.ProcessEnv,
): Promise<{ importStart: number; importEnd: number; loadedAtInit: string[] }> {
  const script = `const importStart = Date.now(); await import(process.argv[1]); const importEnd = Date.now();
    const loadedAtInit = process.moduleLoadList.filter((m) => m.startsWith('NativeModule '));
    setTimeout(() => { console.log(JSON.stringify({ importStart, importEnd, loadedAtInit })); process.exit(0); }, 300);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, bundle], {
      env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', POWERTOOLS_LOG_LEVEL: 'CRITICAL', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').at(-1)!));
      else reject(new Error(`child exited ${code}: ${err.slice(0, 500)}`));
    });
  });
}

const smtpConfig = (extra: object = {}) =>
  JSON.stringify({ smtp: { host: '127.0.0.1', port, security: 'starttls' }, ...extra });

describe('the entry opens the SMTP connection first, inside init', () => {
  it('accepted (and greeted) before the import resolves; EHLO only after init', async () => {
    const before = accepted.length;
    const t = await coldImport({ ENDPOINT_CONFIG: smtpConfig() });
    expect(accepted).toHaveLength(before + 1);
    const a = accepted[before]!;
    expect(a.at).toBeGreaterThanOrEqual(t.importStart);
    expect(a.at).toBeLessThanOrEqual(t.importEnd);
    expect(a.received).toMatch(/^EHLO localhost\r\n/);
    expect(a.firstByteAt!).toBeGreaterThanOrEqual(t.importEnd);
    // Init loads no TLS, HTTP or crypto machinery (node:tls, node:http, node:https ~1.5 ms, node:crypto ~2.5 ms of
    // init CPU measured): the first handshake, the first AWS request and the first hash or random id load them.
    const machinery = [
      'tls',
      '_tls_wrap',
      'http',
      'https',
      '_http_client',
      '_http_agent',
      'crypto',
      'console',
    ];
    expect(t.loadedAtInit.filter((m) => machinery.includes(m.replace('NativeModule ', '')))).toEqual([]);
    expect(t.loadedAtInit).toContain('NativeModule net'); // (the list is the real one)
  });

  it('the same from ENDPOINT_CONFIG_FILE (how the construct deploys the configuration)', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'ahead-'));
    writeFileSync(join(dir, 'endpoint.json'), smtpConfig());
    const before = accepted.length;
    const t = await coldImport({ ENDPOINT_CONFIG_FILE: 'endpoint.json', LAMBDA_TASK_ROOT: dir });
    expect(accepted).toHaveLength(before + 1);
    expect(accepted[before]!.at).toBeLessThanOrEqual(t.importEnd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('nothing opened: no smtp server, an invalid one (a security mode it does not take), SMTP_REUSE=false', async () => {
    const before = accepted.length;
    await coldImport({ ENDPOINT_CONFIG: JSON.stringify({}) });
    await coldImport({
      ENDPOINT_CONFIG: JSON.stringify({ smtp: { host: '127.0.0.1', port, security: 'none' } }),
    });
    await coldImport({ ENDPOINT_CONFIG: smtpConfig(), SMTP_REUSE: 'false' });
    expect(accepted).toHaveLength(before);
  });

  it('a configuration invalid elsewhere: the connection opened for its smtp server is closed without a byte', async () => {
    const before = accepted.length;
    await coldImport({ ENDPOINT_CONFIG: smtpConfig({ limits: { maxBatch: -1 } }) });
    expect(accepted).toHaveLength(before + 1);
    await accepted[before]!.closed;
    expect(accepted[before]!.received).toBe('');
  });
});
