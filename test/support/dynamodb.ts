/**
 * Real DynamoDB-protocol servers for tests: dynalite (in-process, memory store) and moto_server (a child
 * process). Both are reached by the handler's own DynamoDB client (functions/store/dynamodb.ts; its parity with
 * the real SDK is test/handlers/dynamodb-client.test.ts). A missing moto_server fails the test (no silent skip).
 */
import dynalite from 'dynalite';
import type { DynamoDb } from '../../functions/store/dynamodb.ts';
import { createSendRecordsTable } from '../../functions/store/table.ts';
import { countingDynamoClient } from '../../local/dynamodb.ts';
import { startMotoServer } from './moto-server.ts';

export interface DynamoEndpoint {
  kind: 'dynalite' | 'moto';
  url: string;
  /** A client of this endpoint that counts the commands it sends (`calls`). */
  client(): CountingClient;
  createTable(name: string): Promise<void>;
  close(): Promise<void>;
}

export type CountingClient = DynamoDb & { calls: string[] };

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

/** `moto_server` (test/support/moto-server.ts) as a second, independent DynamoDB. */
export async function startMoto(): Promise<DynamoEndpoint> {
  const moto = await startMotoServer();
  return endpoint('moto', moto.url, () => moto.close());
}
