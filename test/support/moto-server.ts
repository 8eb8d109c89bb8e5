/**
 * An emulated AWS: `moto_server` (the set-up step of `npm test` checks it is installed) on 127.0.0.1 and a free
 * port, in its own process group; `close()` ends that group and waits for it. The one starter for every use: the
 * deploy test (moto cannot update a stack, so each run creates and destroys on a fresh server), and the checks of
 * our local SQS endpoint, the idempotency store and the secret write-back against an independent implementation.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { requireTool } from './tools.ts';

export interface MotoServer {
  port: number;
  /** http://127.0.0.1:PORT — the endpoint for every SDK client and the CLIs. */
  url: string;
  /** The variables that point the AWS SDKs, the CDK CLI and moto's CloudFormation at this server. */
  env: Record<string, string>;
  /** moto's own output (for a failing test's message). */
  output(): string;
  close(): Promise<void>;
}

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/moto-api/reset`, { method: 'POST', signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

export async function startMotoServer(timeoutMs = 60_000): Promise<MotoServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL: url,
    // `localhost`, not 127.0.0.1: moto reads a dotted-quad host of a template URL as a bucket name
    AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION: `http://localhost:${port}`,
    // never a real profile or credentials file
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  const child = spawn(requireTool('moto_server'), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  child.stderr?.on('data', (d) => {
    out = (out + d).slice(-20_000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    signalGroup(child, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await answers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`moto_server did not answer on ${url} within ${timeoutMs} ms: ${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { port, url, env, output: () => out, close };
}
