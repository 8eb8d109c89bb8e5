/** Creating the send records table (`table-shape.ts`) through the SDK: the local server and the tests. */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { SEND_RECORDS_TABLE as T } from './table-shape.ts';

export function sendRecordsTable(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: T.partitionKey, AttributeType: 'S' },
      { AttributeName: T.messageIdAttribute, AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: T.partitionKey, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: T.messageIdIndex,
        KeySchema: [{ AttributeName: T.messageIdAttribute, KeyType: 'HASH' }],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

/** Create the table (local server, tests); an existing table is left as it is. */
export async function createSendRecordsTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new CreateTableCommand(sendRecordsTable(tableName)));
  } catch (e) {
    if (e instanceof ResourceInUseException) return;
    throw e;
  }
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: T.ttlAttribute, Enabled: true },
      }),
    );
  } catch {
    // dynalite has no TTL API; expired records are ignored on read anyway.
  }
}
