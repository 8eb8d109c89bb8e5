/**
 * The local DynamoDB: dynalite (npm; DynamoDB's JSON protocol on LevelDB, here an in-memory store) in this
 * process on an ephemeral 127.0.0.1 port, with the send records table created (functions/store/table.ts), so
 * the real SDK, Powertools and the AWS CLI (`--endpoint-url`) work unchanged. Nothing is written to disk.
 */
import dynalite from 'dynalite';
import { DynamoDb } from '../functions/store/dynamodb.ts';
import { createSendRecordsTable } from '../functions/store/table.ts';
import { closeHttp } from './aws-json-http.ts';

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
  const close = () => closeHttp(server);
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

/**
 * The handler's DynamoDB client (functions/store/dynamodb.ts) for a local DynamoDB, recording each operation it
 * sends in `calls` (tests and the bench count them).
 */
export function countingDynamoClient(url: string): DynamoDb & { calls: string[] } {
  const calls: string[] = [];
  const client = new DynamoDb({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    onCall: (operation) => calls.push(operation),
  });
  return Object.assign(client, { calls });
}
