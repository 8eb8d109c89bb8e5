/**
 * `delivery.maxPerSecond` in the send records table: ONE item, `rate#delivery`, holds the token bucket shared by
 * every instance (`tokens` at epoch ms `at`; refill rule in send/rate.ts). A take reads it consistently and writes
 * it back only if it is unchanged since the read (a condition on `at`), so two instances never spend the same
 * tokens: the loser reads again (at most `MAX_RACES` times, then it is granted nothing now and the queue tries
 * later). Two calls per take; nothing is written when nothing is granted.
 */
import { type Bucket, refill, type SendRate } from '../send/rate.ts';
import { conditionFailed, type DynamoDb, marshall, unmarshall } from './dynamodb.ts';
import { SEND_RECORDS_TABLE } from './table-shape.ts';

const KEY = 'rate#delivery';
const MAX_RACES = 5;
/** The bucket item expires a day after its last take (an idle bucket is full anyway). */
const TTL_SECONDS = 86_400;

export class TableSendRate implements SendRate {
  constructor(
    readonly client: () => DynamoDb,
    readonly tableName: string,
    readonly perSecond: number,
  ) {}

  async take(wanted: number): Promise<number> {
    const Key = marshall({ [SEND_RECORDS_TABLE.partitionKey]: KEY });
    for (let race = 0; race < MAX_RACES; race++) {
      const item = await this.client().getItem({ TableName: this.tableName, Key, ConsistentRead: true });
      const bucket = item ? bucketOf(unmarshall(item)) : undefined;
      // Never before the bucket's own time: an `at` written backwards (a clock read before another instance's
      // take, or a host clock a little behind) would refill the same interval twice and grant more than the rate.
      const now = Math.max(Date.now(), bucket?.at ?? 0);
      const available = refill(bucket, this.perSecond, now);
      const granted = Math.min(Math.max(0, Math.floor(wanted)), Math.floor(available));
      if (granted <= 0) return 0;
      try {
        await this.client().putItem({
          TableName: this.tableName,
          Item: marshall({
            [SEND_RECORDS_TABLE.partitionKey]: KEY,
            tokens: available - granted,
            at: now,
            [SEND_RECORDS_TABLE.ttlAttribute]: Math.round(now / 1000) + TTL_SECONDS,
          }),
          ...(bucket
            ? {
                ConditionExpression: '#at = :at',
                ExpressionAttributeNames: { '#at': 'at' },
                ExpressionAttributeValues: marshall({ ':at': bucket.at }),
              }
            : {
                ConditionExpression: 'attribute_not_exists(#id)',
                ExpressionAttributeNames: { '#id': SEND_RECORDS_TABLE.partitionKey },
              }),
        });
        return granted;
      } catch (e) {
        if (!conditionFailed(e)) throw e; // another instance took tokens meanwhile: read again
      }
    }
    return 0;
  }
}

function bucketOf(item: Record<string, unknown>): Bucket | undefined {
  const { tokens, at } = item;
  return typeof tokens === 'number' && typeof at === 'number' ? { tokens, at } : undefined;
}
