/**
 * Powertools' idempotency persistence layer over our DynamoDB client (./dynamodb.ts) instead of the SDK's:
 * `BasePersistenceLayer` keeps the semantics (key hashing, payload hash, expiry, the INPROGRESS → COMPLETED
 * life cycle); this class makes the same four writes and reads as Powertools' `DynamoDBPersistenceLayer`
 * (`@aws-lambda-powertools/idempotency/dynamodb`, 2.35): the same attributes, the same put condition (the key is
 * free, expired, or an INPROGRESS record whose `in_progress_expiration` has passed), `ALL_OLD` on a failed
 * condition, consistent reads. Without the SDK client it would bring (and `addUserAgentMiddleware`, an SDK hook).
 */
import type { JSONValue } from '@aws-lambda-powertools/commons/types';
import {
  IdempotencyItemAlreadyExistsError,
  IdempotencyItemNotFoundError,
  IdempotencyRecordStatus,
} from '@aws-lambda-powertools/idempotency';
import { BasePersistenceLayer, IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import { conditionFailed, type DynamoDb, type Item, marshall, unmarshall } from './dynamodb.ts';

/** Where Powertools' fields live in an item. */
export interface RecordAttributes {
  key: string;
  expiry: string;
  inProgressExpiry: string;
  status: string;
  data: string;
  validation: string;
}

export class SendRecordLayer extends BasePersistenceLayer {
  readonly #db: () => DynamoDb;
  readonly #table: string;
  readonly #a: RecordAttributes;

  /** `db` is asked for the client at each call (it is made at the first). */
  constructor(db: () => DynamoDb, tableName: string, attributes: RecordAttributes) {
    super();
    this.#db = db;
    this.#table = tableName;
    this.#a = attributes;
  }

  /** The key of the item Powertools keeps for `data` (its hashing). */
  itemKey(data: JSONValue): Item {
    return this.#key(this.getHashedIdempotencyKey(data));
  }

  #key(idempotencyKey: string): Item {
    return { [this.#a.key]: { S: idempotencyKey } };
  }

  #record(item: Record<string, unknown>): IdempotencyRecord {
    const a = this.#a;
    return new IdempotencyRecord({
      idempotencyKey: item[a.key] as string,
      status: item[a.status] as ReturnType<IdempotencyRecord['getStatus']>,
      expiryTimestamp: item[a.expiry] as number | undefined,
      inProgressExpiryTimestamp: item[a.inProgressExpiry] as number | undefined,
      responseData: item[a.data] as JSONValue,
      payloadHash: item[a.validation] as string | undefined,
    });
  }

  protected async _getRecord(idempotencyKey: string): Promise<IdempotencyRecord> {
    const item = await this.#db().getItem({
      TableName: this.#table,
      Key: this.#key(idempotencyKey),
      ConsistentRead: true,
    });
    if (!item) throw new IdempotencyItemNotFoundError();
    return this.#record(unmarshall(item));
  }

  protected async _putRecord(record: IdempotencyRecord): Promise<void> {
    const a = this.#a;
    const item: Item = {
      ...this.#key(record.idempotencyKey),
      ...marshall({ [a.expiry]: record.expiryTimestamp, [a.status]: record.getStatus() }),
    };
    if (record.inProgressExpiryTimestamp !== undefined) {
      item[a.inProgressExpiry] = { N: String(record.inProgressExpiryTimestamp) };
    }
    if (this.isPayloadValidationEnabled() && record.payloadHash !== undefined) {
      item[a.validation] = { S: record.payloadHash };
    }
    const now = Date.now();
    try {
      await this.#db().putItem({
        TableName: this.#table,
        Item: item,
        ConditionExpression:
          'attribute_not_exists(#id) OR #expiry < :now OR ' +
          '(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)',
        ExpressionAttributeNames: {
          '#id': a.key,
          '#expiry': a.expiry,
          '#in_progress_expiry': a.inProgressExpiry,
          '#status': a.status,
        },
        ExpressionAttributeValues: marshall({
          ':now': now / 1000,
          ':now_in_millis': now,
          ':inprogress': IdempotencyRecordStatus.INPROGRESS,
        }),
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      });
    } catch (e) {
      const failed = conditionFailed(e);
      if (!failed) throw e;
      throw new IdempotencyItemAlreadyExistsError(
        `Failed to put record for already existing idempotency key: ${record.idempotencyKey}`,
        failed.item && this.#record(unmarshall(failed.item)),
      );
    }
  }

  protected async _updateRecord(record: IdempotencyRecord): Promise<void> {
    const a = this.#a;
    const names: Record<string, string> = { '#expiry': a.expiry, '#status': a.status };
    const values: Record<string, unknown> = {
      ':expiry': record.expiryTimestamp,
      ':status': record.getStatus(),
    };
    const set = ['#expiry = :expiry', '#status = :status'];
    if (record.responseData !== undefined) {
      set.push('#response_data = :response_data');
      names['#response_data'] = a.data;
      values[':response_data'] = record.responseData;
    }
    if (this.isPayloadValidationEnabled()) {
      set.push('#validation_key = :validation_key');
      names['#validation_key'] = a.validation;
      values[':validation_key'] = record.payloadHash;
    }
    await this.#db().updateItem({
      TableName: this.#table,
      Key: this.#key(record.idempotencyKey),
      UpdateExpression: `SET ${set.join(', ')}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: marshall(values),
    });
  }

  protected async _deleteRecord(record: IdempotencyRecord): Promise<void> {
    await this.#db().deleteItem({ TableName: this.#table, Key: this.#key(record.idempotencyKey) });
  }
}
