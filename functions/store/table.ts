/** Creating the send records table (`table-shape.ts`) through our DynamoDB client: the local server and the tests. */
import { AwsError } from '../aws/request.ts';
import type { DynamoDb } from './dynamodb.ts';
import { SEND_RECORDS_TABLE as T } from './table-shape.ts';

function sendRecordsTable(tableName: string) {
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
export async function createSendRecordsTable(client: DynamoDb, tableName: string): Promise<void> {
  try {
    await client.call('CreateTable', sendRecordsTable(tableName));
  } catch (e) {
    if (e instanceof AwsError && e.name === 'ResourceInUseException') return;
    throw e;
  }
  try {
    await client.call('UpdateTimeToLive', {
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: T.ttlAttribute, Enabled: true },
    });
  } catch {
    // dynalite has no TTL API; expired records are ignored on read anyway.
  }
}
