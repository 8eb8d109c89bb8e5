/**
 * functions/store/dynamodb.ts, the DynamoDB client the send records use instead of @aws-sdk/client-dynamodb:
 * - its Signature Version 4 is the SDK's: the real @aws-sdk/client-dynamodb sends a conditional PutItem to a
 *   recording server, and our signer, given the same signed headers, body and time, produces the same
 *   Authorization header, byte for byte; our client sends the same JSON body for the same input;
 * - against dynalite AND moto_server: what our client writes the SDK reads back equal, and the other way round
 *   (our marshall/unmarshall are the SDK's util-dynamodb for the JSON we store); a failed condition names its
 *   type and, with ALL_OLD, the item; a throttled call is retried once, a permanent error is not;
 * - region, credentials and endpoint from the environment Lambda sets; without them the store answers
 *   `RecordStoreError` (idempotency_unavailable), as the SDK's provider chain failed.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { marshall as sdkMarshall, unmarshall as sdkUnmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsError } from '../../functions/aws/request.ts';
import { RecordStoreError } from '../../functions/send/idempotency.ts';
import {
  conditionFailed,
  DynamoDb,
  dynamoDbFromEnv,
  type Item,
  marshall,
  unmarshall,
} from '../../functions/store/dynamodb.ts';
import { DynamoSendRecords } from '../../functions/store/send-records.ts';
import { type DynamoEndpoint, startDynalite, startMoto } from '../support/dynamodb.ts';
import {
  LAMBDA_ENV,
  type Recorder,
  signLikeSdk,
  startRecorder,
  TEST_CREDENTIALS,
} from '../support/sigv4-parity.ts';

const credentials = TEST_CREDENTIALS;

/** A stored answer as the send records keep it: nested maps, lists, numbers, booleans, null, empty strings. */
const stored = {
  id: 'send#abc',
  expiration: 1_900_000_000,
  status: 'COMPLETED',
  data: {
    status: {
      messageId: '<x.1@example.com>',
      state: 'sent',
      accepted: [{ address: 'example.com', code: 250 }],
      rejected: [],
      reply: { code: 250, enhancedCode: '2.0.0', text: 'Ok: queued as Q1', queueId: 'Q1' },
      attempts: 1,
      createdAt: '2026-12-01T22:00:00.000Z',
    },
    ok: true,
    note: '',
    nothing: null,
    ratio: 0.5,
    big: 1_764_627_237_123,
  },
};

const putInput = (table: string): PutItemCommandInput => ({
  TableName: table,
  Item: sdkMarshall(stored),
  ConditionExpression: 'attribute_not_exists(#id) OR #expiry < :now',
  ExpressionAttributeNames: { '#id': 'id', '#expiry': 'expiration' },
  ExpressionAttributeValues: sdkMarshall({ ':now': 1_764_627_237.5 }),
  ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
});

let recorder: Recorder;
beforeAll(async () => {
  recorder = await startRecorder('application/x-amz-json-1.0', () => ({}));
});
afterAll(() => recorder.close());

describe('the wire request is the SDK’s', () => {
  for (const withToken of [true, false]) {
    it(`Signature Version 4 of a conditional PutItem matches the SDK's${withToken ? ' (session token)' : ''}`, async () => {
      const creds = withToken ? credentials : { ...credentials, sessionToken: undefined };
      const sdk = new DynamoDBClient({ region: 'eu-west-1', credentials: creds, endpoint: recorder.url });
      recorder.recorded.length = 0;
      await sdk.send(new PutItemCommand(putInput('records')));
      sdk.destroy();
      const req = recorder.recorded[0]!;
      expect(req.headers['x-amz-target']).toBe('DynamoDB_20120810.PutItem');
      const ours = signLikeSdk(req, recorder.url, {
        region: 'eu-west-1',
        service: 'dynamodb',
        credentials: creds,
      });
      expect(ours.authorization).toBe(String(req.headers.authorization));
      expect(ours['x-amz-security-token']).toBe(withToken ? credentials.sessionToken : undefined);
    });
  }

  it('our client sends the same operation and body, JSON 1.0, signed for dynamodb', async () => {
    const sdk = new DynamoDBClient({ region: 'eu-west-1', credentials, endpoint: recorder.url });
    const ours = new DynamoDb({ region: 'eu-west-1', credentials, endpoint: recorder.url });
    recorder.recorded.length = 0;
    await sdk.send(new PutItemCommand(putInput('records')));
    await ours.putItem(putInput('records') as Parameters<DynamoDb['putItem']>[0]);
    sdk.destroy();
    ours.destroy();
    const [theirs, mine] = recorder.recorded;
    expect(JSON.parse(mine!.body)).toEqual(JSON.parse(theirs!.body));
    expect(mine!.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(mine!.headers['x-amz-target']).toBe('DynamoDB_20120810.PutItem');
    expect(String(mine!.headers.authorization)).toMatch(
      /^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY000001\/\d{8}\/eu-west-1\/dynamodb\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
  });

  it('marshall and unmarshall agree with the SDK’s util-dynamodb for the JSON we store', () => {
    expect(marshall(stored)).toEqual(sdkMarshall(stored));
    expect(unmarshall(sdkMarshall(stored) as Item)).toEqual(sdkUnmarshall(sdkMarshall(stored)));
    // undefined is left out, as with the SDK's removeUndefinedValues
    expect(marshall({ a: 1, b: undefined, c: { d: undefined } })).toEqual(
      sdkMarshall({ a: 1, b: undefined, c: { d: undefined } }, { removeUndefinedValues: true }),
    );
    expect(() => marshall({ n: Number.NaN })).toThrow(TypeError);
  });
});

describe.each([
  ['dynalite', startDynalite],
  ['moto_server', startMoto],
] as const)('against %s', (name, start) => {
  let ddb: DynamoEndpoint;
  let sdk: DynamoDBClient;
  let ours: DynamoDb & { calls: string[] };
  beforeAll(async () => {
    ddb = await start();
    await ddb.createTable('parity');
    ours = ddb.client();
    sdk = new DynamoDBClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      endpoint: ddb.url,
    });
  }, 60_000);
  afterAll(async () => {
    sdk?.destroy();
    ours?.destroy();
    await ddb?.close();
  });

  it('what our client writes the SDK reads back equal, and the other way round', async () => {
    await ours.putItem({ TableName: 'parity', Item: marshall({ ...stored, id: 'ours' }) });
    const read = await sdk.send(
      new GetItemCommand({ TableName: 'parity', Key: sdkMarshall({ id: 'ours' }), ConsistentRead: true }),
    );
    expect(sdkUnmarshall(read.Item!)).toEqual({ ...stored, id: 'ours' });
    await sdk.send(new PutItemCommand({ TableName: 'parity', Item: sdkMarshall({ ...stored, id: 'sdk' }) }));
    const back = await ours.getItem({
      TableName: 'parity',
      Key: marshall({ id: 'sdk' }),
      ConsistentRead: true,
    });
    expect(unmarshall(back!)).toEqual({ ...stored, id: 'sdk' });
    expect(await ours.getItem({ TableName: 'parity', Key: marshall({ id: 'none' }) })).toBeUndefined();
  });

  it('a failed condition is ConditionalCheckFailedException, permanent, not retried, with the old item', async () => {
    await ours.putItem({ TableName: 'parity', Item: marshall({ ...stored, id: 'taken' }) });
    ours.calls.length = 0;
    const err = await ours
      .putItem({
        TableName: 'parity',
        Item: marshall({ id: 'taken', status: 'INPROGRESS' }),
        ConditionExpression: 'attribute_not_exists(#id)',
        ExpressionAttributeNames: { '#id': 'id' },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsError);
    expect([(err as AwsError).name, (err as AwsError).status, (err as AwsError).transient]).toEqual([
      'ConditionalCheckFailedException',
      400,
      false,
    ]);
    expect(ours.calls).toEqual(['PutItem']);
    const old = conditionFailed(err)!.item;
    // moto returns the old item, as DynamoDB does; dynalite returns none (Powertools then reads it: GetItem).
    if (name === 'moto_server') expect(unmarshall(old!)).toEqual({ ...stored, id: 'taken' });
    else expect(old).toBeUndefined();
    expect(conditionFailed(new Error('x'))).toBeUndefined();
  });

  it('updates, queries the message-id index, deletes', async () => {
    await ours.putItem({ TableName: 'parity', Item: marshall({ id: 'u', messageId: '<u@x>', n: 1 }) });
    await ours.updateItem({
      TableName: 'parity',
      Key: marshall({ id: 'u' }),
      UpdateExpression: 'SET #n = :n',
      ConditionExpression: '#n = :one',
      ExpressionAttributeNames: { '#n': 'n' },
      ExpressionAttributeValues: marshall({ ':n': 2, ':one': 1 }),
    });
    const found = await ours.query({
      TableName: 'parity',
      IndexName: 'byMessageId',
      KeyConditionExpression: '#mid = :mid',
      ExpressionAttributeNames: { '#mid': 'messageId' },
      ExpressionAttributeValues: marshall({ ':mid': '<u@x>' }),
      Limit: 5,
    });
    expect(found.map(unmarshall)).toEqual([{ id: 'u', messageId: '<u@x>', n: 2 }]);
    await ours.deleteItem({ TableName: 'parity', Key: marshall({ id: 'u' }) });
    expect(await ours.getItem({ TableName: 'parity', Key: marshall({ id: 'u' }) })).toBeUndefined();
  });
});

describe('retries and bounds', () => {
  it('a throttled call is retried once; a permanent error is not; the x-amzn-ErrorType header names it', async () => {
    const answers: Array<[number, string, string | undefined]> = [];
    let seen = 0;
    const flaky = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen++;
        const [status, body, header] = answers.shift() ?? [200, '{}', undefined];
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.0',
          ...(header ? { 'x-amzn-errortype': header } : {}),
        });
        res.end(body);
      });
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
    const db = new DynamoDb({ region: 'us-east-1', credentials, endpoint: url });
    try {
      answers.push([
        400,
        '{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}',
        undefined,
      ]);
      await db.deleteItem({ TableName: 't', Key: marshall({ id: 'a' }) });
      expect(seen).toBe(2);
      seen = 0;
      answers.push([
        400,
        '{"message":"bad"}',
        'ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/',
      ]);
      const err = (await db
        .deleteItem({ TableName: 't', Key: marshall({ id: 'a' }) })
        .catch((e: unknown) => e)) as AwsError;
      expect([err.name, err.message, err.transient, seen]).toEqual(['ValidationException', 'bad', false, 1]);
      seen = 0;
      answers.push([500, 'oops', undefined], [503, '', undefined]);
      const down = (await db
        .getItem({ TableName: 't', Key: marshall({ id: 'a' }) })
        .catch((e: unknown) => e)) as AwsError;
      expect([down.name, down.status, down.transient, seen]).toEqual(['InternalServiceError', 503, true, 2]);
    } finally {
      db.destroy();
      flaky.closeAllConnections();
      await new Promise<void>((r) => flaky.close(() => r()));
    }
  });

  it('an answer longer than an item and a page can be is refused (transient), not buffered', async () => {
    const huge = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      for (let i = 0; i < 12; i++) res.write(chunk);
      res.end('{}');
    });
    await new Promise<void>((r) => huge.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(huge.address() as AddressInfo).port}`;
    const db = new DynamoDb({ region: 'us-east-1', credentials, endpoint: url, maxAttempts: 1 });
    try {
      const err = (await db
        .getItem({ TableName: 't', Key: marshall({ id: 'a' }) })
        .catch((e: unknown) => e)) as AwsError;
      expect([err.name, err.message, err.transient]).toEqual([
        'NetworkError',
        'the answer is too long',
        true,
      ]);
    } finally {
      db.destroy();
      huge.closeAllConnections();
      await new Promise<void>((r) => huge.close(() => r()));
    }
  });
});

describe('region, credentials and endpoint from the Lambda environment', () => {
  const lambdaEnv = LAMBDA_ENV;

  it('the regional endpoint unless AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL says otherwise', () => {
    expect(dynamoDbFromEnv(lambdaEnv).endpoint.href).toBe('https://dynamodb.eu-central-1.amazonaws.com/');
    expect(dynamoDbFromEnv({ ...lambdaEnv, AWS_ENDPOINT_URL: 'http://127.0.0.1:1/' }).endpoint.port).toBe(
      '1',
    );
    expect(
      dynamoDbFromEnv({
        ...lambdaEnv,
        AWS_ENDPOINT_URL: 'http://127.0.0.1:1/',
        AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:2/',
      }).endpoint.port,
    ).toBe('2');
  });

  it('without region or credentials: a permanent ConfigurationError, which the store answers as RecordStoreError', async () => {
    const { AWS_ACCESS_KEY_ID: _a, ...partial } = lambdaEnv;
    expect(() => dynamoDbFromEnv(partial)).toThrow(
      expect.objectContaining({
        name: 'ConfigurationError',
        message: 'AWS_ACCESS_KEY_ID not set (Lambda sets them)',
      }),
    );
    const store = new DynamoSendRecords({ tableName: 't', env: partial });
    await expect(store.status('<m@x>')).rejects.toBeInstanceOf(RecordStoreError);
  });
});
