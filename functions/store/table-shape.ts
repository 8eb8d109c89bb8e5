/**
 * The send records table's shape, dependency-free, for the adapter, the local server and the CDK construct:
 * partition key `id` (S), TTL attribute `expiration`, and the index `byMessageId` (partition key `messageId`, S,
 * all attributes) for status look-ups.
 */
export const SEND_RECORDS_TABLE = {
  partitionKey: 'id',
  ttlAttribute: 'expiration',
  messageIdAttribute: 'messageId',
  messageIdIndex: 'byMessageId',
} as const;
