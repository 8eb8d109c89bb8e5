/**
 * Real DynamoDB-protocol servers for tests: dynalite (in-process, memory store) and moto_server (a child
 * process). Both are reached by the real SDK. A missing moto_server fails the test (no silent skip).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { createSendRecordsTable } from '../../functions/store/table.ts';
import { countingDynamoClient } from '../../local/dynamodb.ts';

export interface DynamoEndpoint {
  kind: 'dynalite' | 'moto';
  url: string;
  /** A client of this endpoint that counts the commands it sends (`calls`). */
  client(): CountingClient;
  createTable(name: string): Promise<void>;
  close(): Promise<void>;
}

export type CountingClient = DynamoDBClient & { calls: string[] };

export const countingClient: (url: string) => CountingClient = countingDynamoClient;

function endpoint(kind: DynamoEndpoint['kind'], url: string, close: () => Promise<void>): DynamoEndpoint {
  return {
    kind,
    url,
    client: () => countingClient(url),
    async createTable(name) {
      const c = countingClient(url);
      await createSendRecordsTable(c, name);
      c.destroy();
    },
    close,
  };
}

export async function startDynalite(): Promise<DynamoEndpoint> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  return endpoint('dynalite', `http://127.0.0.1:${port}`, () => new Promise((r) => server.close(() => r())));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** `moto_server -H 127.0.0.1 -p PORT`, ready when it answers ListTables (at most 20 s). */
export async function startMoto(): Promise<DynamoEndpoint> {
  const port = await freePort();
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PATH: `/root/.pyenv/shims:${process.env.PATH ?? ''}` },
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 4000) stderr += c.toString();
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (e) => reject(new Error(`moto_server could not start: ${e.message}`)));
    child.once('exit', (code) => reject(new Error(`moto_server exited (${code}): ${stderr.slice(0, 500)}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  for (;;) {
    try {
      const r = await Promise.race([
        fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-amz-json-1.0',
            'x-amz-target': 'DynamoDB_20120810.ListTables',
            authorization:
              'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x',
          },
          body: '{}',
        }),
        exited,
      ]);
      if (r.ok) break;
    } catch (e) {
      if (Date.now() - started > 20_000 || /moto_server/u.test(String((e as Error).message))) {
        child.kill('SIGKILL');
        throw e;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  exited.catch(() => {});
  return endpoint('moto', url, async () => {
    if (child.exitCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  });
}
