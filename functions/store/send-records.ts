/**
 * The send records in DynamoDB: the adapter behind the use case's `SendRecordStore` port
 * (`functions/send/idempotency.ts`). One table, partition key `id`, TTL attribute `expiration`, and a sparse
 * index `byMessageId` (partition key `messageId`) for status look-ups.
 *
 * - Keyed messages: Powertools' idempotency records (`@aws-lambda-powertools/idempotency`; its persistence layer
 *   over our own DynamoDB client, ./record-layer.ts and ./dynamodb.ts, so no SDK is loaded) do the claim, the replay, the payload check (sha256 of the payload) and the clean-up: a put of an
 *   INPROGRESS record that succeeds only when the key is free or its owner's time ran out, an update to COMPLETED
 *   with the stored answer, a delete when the work failed. That is 2 calls on a repeat-free path.
 * - The marker before the last byte is OUR conditional write on the same item, because Powertools cannot express
 *   it: its INPROGRESS record becomes free again once `in_progress_expiration` passes (Lambda's remaining time), so a
 *   retry after a crash right after the final dot would send the message a second time, and its record has no room
 *   for the Message-ID a `delivery_unknown` answer must name. The marker sets `messageId`, the `sending` status and
 *   the owner's deadline and REMOVES `in_progress_expiration`: Powertools' put condition then never takes the record
 *   over (until the record's TTL), and an attempt that finds it after the owner's deadline answers `abandoned`.
 * - Messages without a key: one item `message#<Message-ID>`, put (conditionally) at the marker, updated at the end.
 */

import type { JSONValue } from '@aws-lambda-powertools/commons/types';
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  IdempotencyValidationError,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import type { AwsClientOptions } from '../aws/request.ts';
import {
  type Claim,
  type ClaimResult,
  type MessageRecord,
  type MessageStatus,
  RecordStoreError,
  type SendRecordStore,
  type StoredOutcome,
  type TrackOptions,
} from '../send/idempotency.ts';
import type { SendRate } from '../send/rate.ts';
import { conditionFailed, DynamoDb, dynamoDbFromEnv, type Item, marshall, unmarshall } from './dynamodb.ts';
import { SendRecordLayer } from './record-layer.ts';
import { TableSendRate } from './send-rate.ts';
import { SEND_RECORDS_TABLE } from './table-shape.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

/** Powertools' attribute names (its defaults), and ours. */
const A = {
  key: SEND_RECORDS_TABLE.partitionKey,
  expiry: SEND_RECORDS_TABLE.ttlAttribute,
  inProgressExpiry: 'in_progress_expiration',
  status: 'status',
  data: 'data',
  messageId: SEND_RECORDS_TABLE.messageIdAttribute,
  message: 'message',
  owner: 'owner',
  ownerDeadline: 'ownerDeadline',
  validation: 'validation',
} as const;

export interface SendRecordTableOptions {
  tableName: string;
  /** The DynamoDB client (tests count its calls); default: one from `clientConfig`, else from `env`. */
  client?: DynamoDb;
  clientConfig?: AwsClientOptions;
  /** Region, credentials and `AWS_ENDPOINT_URL_DYNAMODB` when there is no `clientConfig`. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The send records client: bounded waits (a DynamoDB that does not answer must not hold the invocation until
 * Lambda's timeout) and one retry of a transient failure.
 */
export const RECORDS_CLIENT_LIMITS = {
  maxAttempts: 2,
  connectTimeoutMs: 1000,
  requestTimeoutMs: 3000,
} as const;

type ClaimData = { key: string; payload: JSONValue };

export class DynamoSendRecords implements SendRecordStore {
  readonly tableName: string;
  readonly #opts: SendRecordTableOptions;
  #client: DynamoDb | undefined;
  /** Powertools configures a layer once (its TTL among it): one layer per TTL in use. */
  readonly #layers = new Map<number, SendRecordLayer>();

  constructor(opts: SendRecordTableOptions) {
    this.tableName = opts.tableName;
    this.#opts = opts;
    this.#client = opts.client;
  }

  /**
   * Made at the first call, so that a region or credential missing from the environment is that call's error
   * (a `RecordStoreError`: `idempotency_unavailable`), as the SDK's provider chain failed.
   */
  get client(): DynamoDb {
    this.#client ??= this.#opts.clientConfig
      ? new DynamoDb({ ...RECORDS_CLIENT_LIMITS, ...this.#opts.clientConfig })
      : dynamoDbFromEnv(this.#opts.env ?? process.env, RECORDS_CLIENT_LIMITS);
    return this.#client;
  }

  #layer(ttlSeconds: number): SendRecordLayer {
    let layer = this.#layers.get(ttlSeconds);
    if (!layer) {
      layer = new SendRecordLayer(() => this.client, this.tableName, A);
      this.#layers.set(ttlSeconds, layer);
    }
    return layer;
  }

  async once(claim: Claim, work: (record: MessageRecord) => Promise<StoredOutcome>): Promise<ClaimResult> {
    const layer = this.#layer(claim.ttlSeconds);
    const data: ClaimData = { key: claim.key, payload: claim.payload as JSONValue };
    let replayed = true;
    const config = new IdempotencyConfig({
      eventKeyJmesPath: 'key',
      payloadValidationJmesPath: 'payload',
      throwOnNoIdempotencyKey: true,
      expiresAfterSeconds: claim.ttlSeconds,
      hashFunction: 'sha256',
    });
    config.registerLambdaContext({
      getRemainingTimeInMillis: () => Math.max(1, claim.ownerDeadline - Date.now()),
    } as Parameters<IdempotencyConfig['registerLambdaContext']>[0]);
    const owner = crypto().randomUUID();
    let worked: { ok: true; stored: StoredOutcome } | { ok: false; error: unknown } | undefined;
    const run = makeIdempotent(
      async (_data: ClaimData) => {
        replayed = false;
        const key = layer.itemKey(data);
        try {
          const stored = await work({ markDataEnd: (status) => this.#markClaim(key, owner, claim, status) });
          worked = { ok: true, stored };
          return stored;
        } catch (e) {
          worked = { ok: false, error: e };
          throw e;
        }
      },
      { persistenceStore: layer, config, keyPrefix: 'send' },
    );
    try {
      const stored = (await run(data)) as StoredOutcome;
      return { kind: 'done', stored, replayed };
    } catch (e) {
      // The work ran: its outcome stands even when Powertools could not complete or delete the record (a sent
      // message is not an error; a marked record left unfinished answers `abandoned` after the owner's deadline).
      if (worked?.ok) return { kind: 'done', stored: worked.stored, replayed: false, recordFailed: true };
      if (worked) throw worked.error;
      if (e instanceof IdempotencyValidationError) return { kind: 'reused' };
      if (e instanceof IdempotencyAlreadyInProgressError) return this.#inProgress(layer.itemKey(data));
      throw new RecordStoreError('the idempotency record could not be claimed', false, { cause: e });
    }
  }

  /** An unfinished claim: still its owner's, or abandoned after its marker. */
  async #inProgress(key: Item): Promise<ClaimResult> {
    const item = await this.#get(key);
    const d = item?.[A.ownerDeadline];
    const deadline = typeof d === 'number' ? d : undefined;
    const marked = item?.[A.message] as MessageStatus | undefined;
    if (marked && deadline !== undefined && Date.now() > deadline) {
      return { kind: 'abandoned', status: { ...marked, state: 'unknown' } };
    }
    const expiry = item?.[A.inProgressExpiry];
    const ownerDeadline = deadline ?? (typeof expiry === 'number' ? expiry : undefined);
    return ownerDeadline === undefined ? { kind: 'in_progress' } : { kind: 'in_progress', ownerDeadline };
  }

  /** OUR conditional write on a Powertools record: the marker (see the top of this file). */
  async #markClaim(key: Item, owner: string, claim: Claim, status: MessageStatus) {
    try {
      await this.client.updateItem({
        TableName: this.tableName,
        Key: key,
        UpdateExpression: 'SET #mid = :mid, #msg = :msg, #owner = :owner, #deadline = :deadline REMOVE #ipe',
        ConditionExpression: '#status = :inprogress AND (attribute_not_exists(#owner) OR #owner = :owner)',
        ExpressionAttributeNames: {
          '#mid': A.messageId,
          '#msg': A.message,
          '#owner': A.owner,
          '#deadline': A.ownerDeadline,
          '#ipe': A.inProgressExpiry,
          '#status': A.status,
        },
        ExpressionAttributeValues: marshall({
          ':mid': status.messageId,
          ':msg': status,
          ':owner': owner,
          ':deadline': claim.ownerDeadline,
          ':inprogress': 'INPROGRESS',
        }),
      });
    } catch (e) {
      throw storeError(e, 'the marker before the end of data could not be written');
    }
  }

  track(opts: TrackOptions): MessageRecord & { finish(status: MessageStatus): Promise<void> } {
    const owner = crypto().randomUUID();
    return {
      markDataEnd: async (status) => {
        try {
          await this.client.putItem({
            TableName: this.tableName,
            Item: marshall(messageItem(status, owner, opts)),
            ConditionExpression: 'attribute_not_exists(#id) OR #owner = :owner',
            ExpressionAttributeNames: { '#id': A.key, '#owner': A.owner },
            ExpressionAttributeValues: marshall({ ':owner': owner }),
          });
        } catch (e) {
          throw storeError(e, 'the message status could not be written');
        }
      },
      finish: async (status) => {
        await this.client.updateItem({
          TableName: this.tableName,
          Key: marshall({ [A.key]: `message#${status.messageId}` }),
          UpdateExpression: 'SET #msg = :msg',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#msg': A.message, '#owner': A.owner },
          ExpressionAttributeValues: marshall({ ':msg': status, ':owner': owner }),
        });
      },
    };
  }

  async status(messageId: string): Promise<MessageStatus | undefined> {
    let items: Record<string, unknown>[];
    try {
      const found = await this.client.query({
        TableName: this.tableName,
        IndexName: SEND_RECORDS_TABLE.messageIdIndex,
        KeyConditionExpression: '#mid = :mid',
        ExpressionAttributeNames: { '#mid': A.messageId },
        ExpressionAttributeValues: marshall({ ':mid': messageId }),
        Limit: 5,
      });
      items = found.map((i) => unmarshall(i));
    } catch (e) {
      throw new RecordStoreError('the message status could not be read', false, { cause: e });
    }
    const now = Date.now() / 1000;
    const live = items.filter((i) => typeof i[A.expiry] !== 'number' || (i[A.expiry] as number) > now);
    // A queued message has several records (its `queued` status, the consumer's claim): the latest one stands.
    const statuses = live.flatMap((i) => statusOfItem(i) ?? []);
    return statuses.sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0))[0];
  }

  /** The item `message#<Message-ID>` holds the status as it stands outside any claim (see the port). */
  sendRate(perSecond: number): SendRate {
    return new TableSendRate(() => this.client, this.tableName, perSecond);
  }

  async saveStatus(status: MessageStatus, ttlSeconds: number): Promise<void> {
    const item = {
      [A.key]: `message#${status.messageId}`,
      [A.messageId]: status.messageId,
      [A.message]: status,
      [A.expiry]: Math.round(Date.now() / 1000) + ttlSeconds,
    };
    try {
      await this.client.putItem({ TableName: this.tableName, Item: marshall(item) });
    } catch (e) {
      throw storeError(e, 'the message status could not be written');
    }
  }

  async #get(key: Item): Promise<Record<string, unknown> | undefined> {
    try {
      const item = await this.client.getItem({ TableName: this.tableName, Key: key, ConsistentRead: true });
      return item ? unmarshall(item) : undefined;
    } catch (e) {
      throw new RecordStoreError('the idempotency record could not be read', false, { cause: e });
    }
  }
}

/** The item of a message without a key. */
function messageItem(status: MessageStatus, owner: string, opts: TrackOptions): Record<string, unknown> {
  return {
    [A.key]: `message#${status.messageId}`,
    [A.messageId]: status.messageId,
    [A.message]: status,
    [A.owner]: owner,
    [A.ownerDeadline]: opts.ownerDeadline,
    [A.expiry]: Math.round(Date.now() / 1000) + opts.ttlSeconds,
  };
}

/** A record's message status: the finished claim's stored status, else the marker's (unknown past its deadline). */
function statusOfItem(item: Record<string, unknown>): MessageStatus | undefined {
  const stored = (item[A.data] as StoredOutcome | undefined)?.status;
  if (item[A.status] === 'COMPLETED' && stored) return stored;
  const marked = item[A.message] as MessageStatus | undefined;
  if (!marked) return undefined;
  const deadline = item[A.ownerDeadline] as number | undefined;
  if (marked.state === 'sending' && typeof deadline === 'number' && Date.now() > deadline) {
    return { ...marked, state: 'unknown' };
  }
  return marked;
}

function storeError(e: unknown, message: string): RecordStoreError {
  const conflict = conditionFailed(e) !== undefined;
  return new RecordStoreError(
    conflict ? `${message}: another attempt holds this message` : message,
    conflict,
    {
      cause: e,
    },
  );
}
