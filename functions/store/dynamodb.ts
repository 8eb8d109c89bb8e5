/**
 * DynamoDB for the send records, built for Lambda: exactly the operations the store makes (GetItem, PutItem,
 * UpdateItem, DeleteItem, Query; CreateTable and UpdateTimeToLive for the local server and tests), each one
 * signed POST (AWS JSON 1.0) through ../aws/request.ts — region and credentials from the environment Lambda
 * sets, bounded, one retry of a transient failure — instead of `@aws-sdk/client-dynamodb` (with @smithy/core
 * and its provider chain, ~400 KB of the bundle). The endpoint is `AWS_ENDPOINT_URL_DYNAMODB`, else
 * `AWS_ENDPOINT_URL`, else the regional one. Items are DynamoDB JSON (`marshall`/`unmarshall` below, the
 * subset of the SDK's util-dynamodb that plain JSON needs).
 */
import {
  type AwsClientOptions,
  AwsError,
  type AwsJsonProtocol,
  AwsJsonService,
  awsClientOptionsFromEnv,
} from '../aws/request.ts';

export type AttributeValue =
  | { S: string }
  | { N: string }
  | { BOOL: boolean }
  | { NULL: true }
  | { L: AttributeValue[] }
  | { M: Item }
  | { SS: string[] }
  | { NS: string[] };
export type Item = Record<string, AttributeValue>;

const DYNAMODB: AwsJsonProtocol = {
  service: 'dynamodb',
  targetPrefix: 'DynamoDB_20120810',
  jsonVersion: '1.0',
  // The SDK's throttling and transient error types for DynamoDB.
  transientTypes: new Set([
    'ProvisionedThroughputExceededException',
    'RequestLimitExceeded',
    'ThrottlingException',
    'ThrottlingError',
    'TooManyRequestsException',
    'TransactionInProgressException',
    'InternalServerError',
    'ServiceUnavailable',
    'RequestTimeout',
    'RequestTimeoutException',
  ]),
  // An item is at most 400 KB and a Query page at most 1 MB; anything longer is not an answer.
  maxResponseBytes: 2 * 1024 * 1024,
};

/** Conditions, names and values of a conditional write or an update. */
interface Expressions {
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
}

export interface PutItemInput extends Expressions {
  TableName: string;
  Item: Item;
  ReturnValuesOnConditionCheckFailure?: 'ALL_OLD' | 'NONE';
}
export interface UpdateItemInput extends Expressions {
  TableName: string;
  Key: Item;
  UpdateExpression: string;
}
export interface KeyInput {
  TableName: string;
  Key: Item;
}
export interface QueryInput {
  TableName: string;
  IndexName?: string;
  KeyConditionExpression: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
  Limit?: number;
}

export class DynamoDb extends AwsJsonService {
  constructor(opts: AwsClientOptions) {
    super(DYNAMODB, opts);
  }

  async getItem(input: KeyInput & { ConsistentRead?: boolean }): Promise<Item | undefined> {
    return (await this.client.call('GetItem', input)).Item as Item | undefined;
  }

  async putItem(input: PutItemInput): Promise<void> {
    await this.client.call('PutItem', input);
  }

  async updateItem(input: UpdateItemInput): Promise<void> {
    await this.client.call('UpdateItem', input);
  }

  async deleteItem(input: KeyInput): Promise<void> {
    await this.client.call('DeleteItem', input);
  }

  async query(input: QueryInput): Promise<Item[]> {
    return ((await this.client.call('Query', input)).Items as Item[] | undefined) ?? [];
  }

  /** The control plane the local server and the tests use (functions/store/table.ts). */
  async call(operation: 'CreateTable' | 'UpdateTimeToLive', input: object): Promise<void> {
    await this.client.call(operation, input);
  }
}

/** A failed condition (`ConditionalCheckFailedException`); with `ALL_OLD`, the item that failed it. */
export function conditionFailed(e: unknown): { item: Item | undefined } | undefined {
  if (!(e instanceof AwsError) || e.name !== 'ConditionalCheckFailedException') return undefined;
  return { item: e.output?.Item as Item | undefined };
}

/** The client for this environment (region and credentials as Lambda sets them; throws `ConfigurationError`). */
export function dynamoDbFromEnv(
  env: NodeJS.ProcessEnv,
  opts: Omit<AwsClientOptions, 'region' | 'credentials' | 'endpoint'> = {},
): DynamoDb {
  return new DynamoDb({ ...opts, ...awsClientOptionsFromEnv(env, 'AWS_ENDPOINT_URL_DYNAMODB') });
}

/** A plain object as a DynamoDB item; `undefined` values are left out (the SDK's `removeUndefinedValues`). */
export function marshall(value: Record<string, unknown>): Item {
  const item: Item = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) item[k] = attribute(v);
  }
  return item;
}

function attribute(v: unknown): AttributeValue {
  if (typeof v === 'string') return { S: v };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`${v} cannot be stored in DynamoDB`);
    return { N: String(v) };
  }
  if (typeof v === 'boolean') return { BOOL: v };
  if (v === null) return { NULL: true };
  if (Array.isArray(v)) return { L: v.filter((x) => x !== undefined).map(attribute) };
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return { M: marshall(v as Record<string, unknown>) };
  }
  throw new TypeError(`a ${typeof v} cannot be stored in DynamoDB`);
}

/** A DynamoDB item as a plain object (numbers as `number`, string and number sets as arrays). */
export function unmarshall(item: Item): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) out[k] = plain(v);
  return out;
}

function plain(v: AttributeValue): unknown {
  if ('S' in v) return v.S;
  if ('N' in v) return Number(v.N);
  if ('BOOL' in v) return v.BOOL;
  if ('NULL' in v) return null;
  if ('L' in v) return v.L.map(plain);
  if ('M' in v) return unmarshall(v.M);
  if ('SS' in v) return [...v.SS];
  if ('NS' in v) return v.NS.map(Number);
  throw new TypeError(`unsupported DynamoDB attribute ${Object.keys(v).join(', ')}`);
}
