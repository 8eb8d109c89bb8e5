/**
 * The local DynamoDB: dynalite (npm; DynamoDB's JSON protocol on LevelDB, here an in-memory store) in this
 * process on an ephemeral 127.0.0.1 port, with the send records table created (functions/store/table.ts), so
 * the real SDK, Powertools and the AWS CLI (`--endpoint-url`) work unchanged. Nothing is written to disk.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { createSendRecordsTable } from '../functions/store/table.ts';

export interface LocalDynamoDb {
  url: string;
  close(): Promise<void>;
}

export async function startLocalDynamoDb(tableName: string): Promise<LocalDynamoDb> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  const close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  const client = countingDynamoClient(url);
  try {
    await createSendRecordsTable(client, tableName);
  } catch (e) {
    await close();
    throw e;
  } finally {
    client.destroy();
  }
  return { url, close };
}

/** A client of a local DynamoDB that records each operation it sends in `calls` (tests and the bench count them). */
export function countingDynamoClient(url: string): DynamoDBClient & { calls: string[] } {
  const client = Object.assign(
    new DynamoDBClient({
      endpoint: url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }),
    { calls: [] as string[] },
  );
  client.middlewareStack.add(
    (next, context) => async (args) => {
      client.calls.push(String(context.commandName).replace(/Command$/u, ''));
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  return client;
}
