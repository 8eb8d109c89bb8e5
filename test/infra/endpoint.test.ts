// The synthesized stack: one synth of the app (prebuilt fixture bundle, no per-test bundling) checked resource by
// resource, plus small construct-level variants (secret sources, CMK, VPC, config delivery, addEventRule).

import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import { EventField } from 'aws-cdk-lib/aws-events';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Code } from 'aws-cdk-lib/aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DELIVERY } from '../../functions/config/endpoint.ts';
import {
  SEND_EMAIL_DETAIL_TYPE as HANDLED_DETAIL_TYPE,
  isEventBridgeEvent,
} from '../../functions/handlers/eventbridge.ts';
import { MIN_RECORD_BUDGET_MS } from '../../functions/handlers/sqs.ts';
import { buildApp } from '../../infra/app.ts';
import {
  DELIVERY_ENV_BYTES,
  envSize,
  INLINE_ENV_BUDGET_BYTES,
  SmtpSendEndpoint,
  type SmtpSendEndpointProps,
} from '../../infra/smtp-send-endpoint.ts';
import {
  ALARM_EVENT,
  buildFixtureBundle,
  cdkJsonContext,
  largeConfig,
  renderInputTransformer,
  SAMPLE_CONFIG,
  tempDir,
} from './helpers.ts';
import { removeIsolatedHome } from './isolate-home.ts';

// biome-ignore lint/suspicious/noExplicitAny: synthesized CloudFormation JSON, checked by the assertions below
type Cfn = any;
type Resource = { Type: string; Properties: Record<string, Cfn>; DeletionPolicy?: string };

const work = tempDir('endpoint');
let bundleDir: string;
let template: Template;
let resources: Record<string, Resource>;
let stack: Stack;
let outCount = 0;

/** A fresh App + Stack holding one SmtpSendEndpoint built from the prebuilt bundle. */
function synthConstruct(
  props: Partial<SmtpSendEndpointProps>,
  extra?: (stack: Stack) => Partial<SmtpSendEndpointProps>,
) {
  // The built-in CloudFormation schema validation (seconds of WASM) runs once, in nag.test.ts.
  const app = new App({
    outdir: `${work.dir}/out-${++outCount}`,
    context: cdkJsonContext(),
    builtinCloudFormationValidation: false,
  });
  const s = new Stack(app, 'Variant');
  const endpoint = new SmtpSendEndpoint(s, 'Endpoint', {
    config: SAMPLE_CONFIG,
    code: Code.fromAsset(bundleDir),
    ...props,
    ...(extra ? extra(s) : {}),
  });
  return { endpoint, template: Template.fromStack(s), stack: s };
}

function ofType(type: string, from = resources): Array<[string, Resource]> {
  return Object.entries(from).filter(([, r]) => r.Type === type);
}

function logicalIdOf(type: string, pathPart: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.includes(pathPart));
  expect(ids, `${type} ${pathPart}`).toHaveLength(1);
  return ids[0]!;
}

/** Every IAM statement of the template: role inline policies and AWS::IAM::Policy documents. */
function allStatements(from: Record<string, Resource>): Array<Record<string, Cfn>> {
  const out: Array<Record<string, Cfn>> = [];
  for (const [, r] of ofType('AWS::IAM::Role', from)) {
    for (const p of r.Properties.Policies ?? []) out.push(...p.PolicyDocument.Statement);
  }
  for (const [, r] of ofType('AWS::IAM::Policy', from)) out.push(...r.Properties.PolicyDocument.Statement);
  return out;
}

const asList = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

beforeAll(async () => {
  bundleDir = await buildFixtureBundle(`${work.dir}/bundle`);
  const built = buildApp({
    outdir: `${work.dir}/app`,
    nag: false,
    context: {
      ...cdkJsonContext(),
      alarmEmail: 'ops@example.com',
      eventSources: 'my.app, billing',
      reservedConcurrency: '3',
    },
    endpoint: { config: SAMPLE_CONFIG, code: Code.fromAsset(bundleDir) },
  });
  stack = built.stack;
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources;
}, 120_000);

afterAll(() => {
  work.cleanup();
  removeIsolatedHome();
});

describe('the stack', () => {
  it('has exactly the expected resources', () => {
    const counts: Record<string, number> = {};
    for (const r of Object.values(resources)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    expect(counts).toEqual({
      'AWS::Logs::LogGroup': 2,
      'AWS::IAM::Role': 1,
      'AWS::IAM::Policy': 1,
      'AWS::Lambda::Function': 1,
      'AWS::Lambda::EventInvokeConfig': 1,
      'AWS::Lambda::Permission': 6,
      'AWS::Lambda::EventSourceMapping': 2,
      'AWS::SQS::Queue': 3,
      'AWS::SQS::QueuePolicy': 3,
      'AWS::S3::Bucket': 1,
      'AWS::S3::BucketPolicy': 1,
      'AWS::ApiGatewayV2::Api': 1,
      'AWS::ApiGatewayV2::Integration': 1,
      'AWS::ApiGatewayV2::Route': 4,
      'AWS::ApiGatewayV2::Stage': 1,
      'AWS::Events::Rule': 2,
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::SNS::Subscription': 1,
      'AWS::CloudWatch::Alarm': 10,
      'AWS::Logs::MetricFilter': 5,
      'AWS::DynamoDB::Table': 1,
    });
  });

  it('emits no warnings or errors during synthesis', () => {
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });

  it('runs the function on arm64 with the newest Node.js runtime, 256 MB, 30 s, reserved concurrency', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 30,
      Handler: 'index.handler',
      ReservedConcurrentExecutions: 3,
      LoggingConfig: { LogGroup: { Ref: logicalIdOf('AWS::Logs::LogGroup', 'FunctionLogs') } },
    });
  });

  it('hands the function its configuration through the environment', () => {
    const [[, fn]] = ofType('AWS::Lambda::Function') as [[string, Resource]];
    const env = fn.Properties.Environment.Variables as Record<string, string>;
    expect(JSON.parse(env.ENDPOINT_CONFIG!)).toEqual(SAMPLE_CONFIG);
    expect(env).toMatchObject({
      SMTP_SECRET_ID: 'smtp-send-endpoint/smtp',
      SECRET_TTL_SECONDS: '300',
      SMTP_REUSE: 'true',
      SMTP_IDLE_SECONDS: '60',
      POWERTOOLS_SERVICE_NAME: 'smtp-send-endpoint',
      POWERTOOLS_LOG_LEVEL: 'INFO',
    });
    expect(env.ENDPOINT_CONFIG_FILE).toBeUndefined();
    // The delivery queue's variables are tokens here; the budget counts them at their largest.
    const literal = Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string'));
    expect(envSize(literal) + DELIVERY_ENV_BYTES).toBeLessThanOrEqual(INLINE_ENV_BUDGET_BYTES);
  });

  it('gives the role no AWS-managed policy', () => {
    const [[, role]] = ofType('AWS::IAM::Role') as [[string, Resource]];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(JSON.stringify(template.toJSON())).not.toContain('AWSLambdaBasicExecutionRole');
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
  });

  it('scopes log writes to its own log group', () => {
    const logs = allStatements(resources).filter((s) =>
      asList(s.Action).some((a: string) => a.startsWith('logs:')),
    );
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: { 'Fn::GetAtt': [logicalIdOf('AWS::Logs::LogGroup', 'FunctionLogs'), 'Arn'] },
    });
  });

  it('reads exactly the SMTP and CAPTCHA secrets: GetSecretValue on their ARNs, never *', () => {
    const secrets = allStatements(resources).filter((s) =>
      asList(s.Action).some((a: string) => a.startsWith('secretsmanager:')),
    );
    expect(secrets).toHaveLength(1);
    expect(secrets[0]!.Action).toBe('secretsmanager:GetSecretValue');
    const arns = asList(secrets[0]!.Resource).map((r) => JSON.stringify(r));
    expect(arns).toHaveLength(3);
    for (const arn of arns) {
      expect(arn).not.toMatch(/"\*"|secret:\*/);
      expect(arn).toContain('secretsmanager');
    }
    expect(arns.some((a) => a.includes(':secret:smtp-send-endpoint/smtp-??????'))).toBe(true);
    expect(arns.some((a) => a.includes(':secret:form-captcha-??????'))).toBe(true);
    expect(arns).toContain(JSON.stringify(SAMPLE_CONFIG.forms!.support!.captcha!.secretId));
    // no CMK given → no KMS permission at all
    expect(JSON.stringify(allStatements(resources))).not.toContain('kms:');
  });

  it('keeps logs for a month and retains the log groups', () => {
    const groups = ofType('AWS::Logs::LogGroup');
    expect(groups).toHaveLength(2);
    for (const [, g] of groups) {
      expect(g.Properties.RetentionInDays).toBe(30);
      expect(g.DeletionPolicy).toBe('Retain');
    }
  });

  it('routes POST /send with IAM auth and the form routes without auth, all to the function', () => {
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    const byKey = Object.fromEntries(routes.map((r) => [r.RouteKey, r]));
    expect(Object.keys(byKey).sort()).toEqual([
      'GET /messages/{messageId}',
      'OPTIONS /forms/{formId}',
      'POST /forms/{formId}',
      'POST /send',
    ]);
    expect(byKey['POST /send']!.AuthorizationType).toBe('AWS_IAM');
    expect(byKey['GET /messages/{messageId}']!.AuthorizationType).toBe('AWS_IAM');
    expect(byKey['POST /forms/{formId}']!.AuthorizationType).toBe('NONE');
    expect(byKey['OPTIONS /forms/{formId}']!.AuthorizationType).toBe('NONE');
    const integration = logicalIdOf('AWS::ApiGatewayV2::Integration', '');
    for (const r of routes) {
      expect(r.Target).toEqual({ 'Fn::Join': ['', ['integrations/', { Ref: integration }]] });
    }
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [logicalIdOf('AWS::Lambda::Function', ''), 'Arn'] },
    });
  });

  it('leaves CORS to the function (no API-level CORS that would swallow OPTIONS)', () => {
    const [[, api]] = ofType('AWS::ApiGatewayV2::Api') as [[string, Resource]];
    expect(api.Properties.ProtocolType).toBe('HTTP');
    expect(api.Properties.CorsConfiguration).toBeUndefined();
  });

  it('throttles the stage, the form routes harder, and writes JSON access logs', () => {
    const [[, stage]] = ofType('AWS::ApiGatewayV2::Stage') as [[string, Resource]];
    const p = stage.Properties;
    expect(p.StageName).toBe('$default');
    expect(p.AutoDeploy).toBe(true);
    expect(p.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 });
    expect(p.RouteSettings).toEqual({
      'POST /forms/{formId}': { ThrottlingRateLimit: 2, ThrottlingBurstLimit: 5 },
      'OPTIONS /forms/{formId}': { ThrottlingRateLimit: 2, ThrottlingBurstLimit: 5 },
    });
    expect(p.AccessLogSettings.DestinationArn).toEqual({
      'Fn::GetAtt': [logicalIdOf('AWS::Logs::LogGroup', 'AccessLogs'), 'Arn'],
    });
    const format = JSON.parse(p.AccessLogSettings.Format) as Record<string, string>;
    expect(format).toMatchObject({ requestId: '$context.requestId', routeKey: '$context.routeKey' });
    // route settings name routes, so the stage must be created after them
    const stageId = logicalIdOf('AWS::ApiGatewayV2::Stage', '');
    const deps = asList<string>(template.toJSON().Resources[stageId].DependsOn);
    const formRouteIds = ofType('AWS::ApiGatewayV2::Route')
      .filter(([, r]) => String(r.Properties.RouteKey).includes('/forms/'))
      .map(([id]) => id);
    expect(formRouteIds).toHaveLength(2);
    for (const id of formRouteIds) expect(deps).toContain(id);
  });

  it('sends "Send Email" events from the configured sources to the function', () => {
    const fnId = logicalIdOf('AWS::Lambda::Function', '');
    const ruleId = logicalIdOf('AWS::Events::Rule', 'SendEmailRule');
    const rule = resources[ruleId]!.Properties;
    expect(rule.EventPattern).toEqual({ 'detail-type': ['Send Email'], source: ['my.app', 'billing'] });
    expect(rule.EventBusName).toBe('default');
    expect(rule.State).toBe('ENABLED');
    expect(rule.Targets).toEqual([{ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] }, Id: 'Target0' }]);
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
  });

  it('ships the example rule: the stack alarms → an email through an input transformer', () => {
    const rule = resources[logicalIdOf('AWS::Events::Rule', 'AlarmEmailRule')]!.Properties;
    expect(rule.EventPattern.source).toEqual(['aws.cloudwatch']);
    expect(rule.EventPattern['detail-type']).toEqual(['CloudWatch Alarm State Change']);
    expect(rule.EventPattern.resources).toHaveLength(10);
    const delivered = renderInputTransformer(rule.Targets[0].InputTransformer, ALARM_EVENT);
    // what the function receives: a "Send Email" event (EventBridge path: thrown failures → retries → DLQ)
    expect(isEventBridgeEvent(delivered)).toBe(true);
    expect(delivered).toMatchObject({
      'detail-type': HANDLED_DETAIL_TYPE,
      id: ALARM_EVENT.id,
      source: 'aws.cloudwatch',
      detail: {
        to: 'ops@example.com',
        subject: '[ALARM] SmtpSendEndpoint-Errors',
        text: 'Alarm SmtpSendEndpoint-Errors changed from OK to ALARM at 2026-11-26T04:00:00Z in eu-west-1 (account 111122223333).',
      },
    });
  });

  it('retries async invocations twice, then sends them to an encrypted, TLS-only DLQ kept 14 days', () => {
    const queueId = logicalIdOf('AWS::SQS::Queue', 'DeadLetterQueue');
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: logicalIdOf('AWS::Lambda::Function', '') },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
    expect(resources[queueId]!.Properties).toMatchObject({
      MessageRetentionPeriod: 1209600,
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    // The function sends to the DLQ (a queued message refused for good goes there at once) and to the delivery queue.
    const send = allStatements(resources).filter((s) => asList(s.Action).includes('sqs:SendMessage'));
    const sent = send.flatMap((s) => asList<Cfn>(s.Resource));
    expect(sent.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { 'Fn::GetAtt': [queueId, 'Arn'] },
      { 'Fn::GetAtt': [logicalIdOf('AWS::SQS::Queue', 'DeliveryQueue'), 'Arn'] },
    ]);
  });

  it('alarms on errors, throttles, DLQ and parked depth > 0 and unknown deliveries, notifying the topic', () => {
    const topicId = logicalIdOf('AWS::SNS::Topic', 'AlarmTopic');
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarms.map((a) => a.MetricName).sort()).toEqual([
      'ApproximateAgeOfOldestMessage',
      'ApproximateNumberOfMessagesVisible',
      'ApproximateNumberOfMessagesVisible',
      'BatchPartialFailure',
      'DeferredOverAnHour',
      'DeliveryUnknown',
      'Errors',
      'FormRoute5xx',
      'SendRoute5xx',
      'Throttles',
    ]);
    for (const a of alarms) expect(a.AlarmActions).toEqual([{ Ref: topicId }]);
    const depthOf = (queuePath: string) => {
      const queueId = logicalIdOf('AWS::SQS::Queue', queuePath);
      const found = alarms.filter(
        (a) =>
          a.MetricName === 'ApproximateNumberOfMessagesVisible' &&
          JSON.stringify(a.Dimensions) ===
            JSON.stringify([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }]),
      );
      expect(found, queuePath).toHaveLength(1);
      return found[0]!;
    };
    for (const queue of ['DeadLetterQueue', 'ParkedQueue']) {
      expect(depthOf(queue)).toMatchObject({
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        Namespace: 'AWS/SQS',
        EvaluationPeriods: 1,
      });
    }
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
  });

  it('counts unknown deliveries from the function log summary lines', () => {
    const [, filter] = ofType('AWS::Logs::MetricFilter').find(([id]) => id.includes('DeliveryUnknown'))!;
    expect(filter.Properties.LogGroupName).toEqual({
      Ref: logicalIdOf('AWS::Logs::LogGroup', 'FunctionLogs'),
    });
    expect(filter.Properties.FilterPattern).toBe(
      '{ ($.outcome = "unknown") || ($.code = "delivery_unknown") }',
    );
    const [transformation] = filter.Properties.MetricTransformations;
    expect(transformation).toEqual({
      MetricNamespace: 'SmtpSendEndpoint/SmtpSendEndpoint',
      MetricName: 'DeliveryUnknown',
      MetricValue: '1',
    });
    const alarm = ofType('AWS::CloudWatch::Alarm')
      .map(([, a]) => a.Properties)
      .find((a) => a.MetricName === 'DeliveryUnknown')!;
    expect(alarm).toMatchObject({
      Namespace: 'SmtpSendEndpoint/SmtpSendEndpoint',
      Statistic: 'Sum',
      Threshold: 1,
    });
    expect(alarm.Dimensions).toBeUndefined();
  });

  it('outputs the API URL and the names needed to operate the endpoint', () => {
    const outputs = Object.keys(template.toJSON().Outputs);
    for (const name of [
      'ApiUrl',
      'SendUrl',
      'FunctionName',
      'DeadLetterQueueUrl',
      'DeadLetterQueueArn',
      'ParkedQueueUrl',
      'ParkedQueueArn',
      'DeliveryQueueUrl',
      'DeliveryBucketName',
      'RedriveMappingId',
      'SmtpSecretId',
      'AlarmTopicArn',
    ]) {
      expect(outputs).toContain(name);
    }
  });
});

describe('send records (idempotency + message status)', () => {
  const tableArn = () => ({ 'Fn::GetAtt': [logicalIdOf('AWS::DynamoDB::Table', 'SendRecords'), 'Arn'] });

  it('is one on-demand table with TTL, point-in-time recovery, KMS encryption and the byMessageId index', () => {
    const [[, table]] = ofType('AWS::DynamoDB::Table') as [[string, Resource]];
    expect(table.Properties).toMatchObject({
      AttributeDefinitions: [
        { AttributeName: 'id', AttributeType: 'S' },
        { AttributeName: 'messageId', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byMessageId',
          KeySchema: [{ AttributeName: 'messageId', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
    });
    expect(table.DeletionPolicy).toBe('Retain');
  });

  it('grants the function exactly the item calls on the table and Query on the index, nothing else', () => {
    const ddb = allStatements(resources).filter((s) =>
      asList(s.Action).some((a: string) => a.startsWith('dynamodb:')),
    );
    expect(ddb).toEqual([
      {
        Sid: 'SendRecords',
        Effect: 'Allow',
        Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        Resource: tableArn(),
      },
      {
        Sid: 'MessageStatusByMessageId',
        Effect: 'Allow',
        Action: 'dynamodb:Query',
        Resource: { 'Fn::Join': ['', [tableArn(), '/index/byMessageId']] },
      },
    ]);
  });

  it('names the table in IDEMPOTENCY_TABLE_NAME and outputs it', () => {
    const [[, fn]] = ofType('AWS::Lambda::Function') as [[string, Resource]];
    expect(fn.Properties.Environment.Variables.IDEMPOTENCY_TABLE_NAME).toEqual({
      Ref: logicalIdOf('AWS::DynamoDB::Table', 'SendRecords'),
    });
    expect(Object.keys(template.toJSON().Outputs)).toContain('SendRecordsTableName');
  });

  it('idempotency: false → no table, no grant, no variable, no status route', () => {
    const { template: t } = synthConstruct({ idempotency: false });
    const res = t.toJSON().Resources as Record<string, Resource>;
    expect(ofType('AWS::DynamoDB::Table', res)).toEqual([]);
    expect(JSON.stringify(allStatements(res))).not.toContain('dynamodb:');
    const [[, fn]] = ofType('AWS::Lambda::Function', res) as [[string, Resource]];
    expect(fn.Properties.Environment.Variables.IDEMPOTENCY_TABLE_NAME).toBeUndefined();
    const keys = ofType('AWS::ApiGatewayV2::Route', res).map(([, r]) => r.Properties.RouteKey);
    expect(keys).not.toContain('GET /messages/{messageId}');
  });

  it('idempotency: false with delivery.maxPerSecond is refused at synth (the shared rate lives in the table)', () => {
    const config = { ...SAMPLE_CONFIG, delivery: { maxPerSecond: 14 } };
    expect(() => synthConstruct({ idempotency: false, config })).toThrow(/maxPerSecond needs idempotency/);
    expect(() => synthConstruct({ config })).not.toThrow();
  });

  it('follows the removal policy of the queues (destroyData)', () => {
    const { template: t } = synthConstruct({ removalPolicy: RemovalPolicy.DESTROY });
    const [[, table]] = ofType('AWS::DynamoDB::Table', t.toJSON().Resources) as [[string, Resource]];
    expect(table.DeletionPolicy).toBe('Delete');
  });
});

describe('dead-letter redrive', () => {
  const dlqArn = () => ({ 'Fn::GetAtt': [logicalIdOf('AWS::SQS::Queue', 'DeadLetterQueue'), 'Arn'] });
  const parkedArn = () => ({ 'Fn::GetAtt': [logicalIdOf('AWS::SQS::Queue', 'ParkedQueue'), 'Arn'] });

  it('maps the DLQ to the function, disabled, 5 records a batch, 2 at a time, reporting item failures', () => {
    const [[mappingId, mapping]] = ofType('AWS::Lambda::EventSourceMapping') as [[string, Resource]];
    expect(mapping.Properties).toMatchObject({
      EventSourceArn: dlqArn(),
      FunctionName: { Ref: logicalIdOf('AWS::Lambda::Function', '') },
      Enabled: false,
      BatchSize: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    // a batching window would add to the time a message stays invisible; none is set
    expect(mapping.Properties.MaximumBatchingWindowInSeconds).toBeUndefined();
    // the output operators pass to `aws lambda update-event-source-mapping --uuid` (Ref of a mapping = its UUID)
    expect(template.toJSON().Outputs.RedriveMappingId.Value).toEqual({ Ref: mappingId });
    expect(template.toJSON().Outputs.ParkedQueueUrl.Value).toEqual({
      Ref: logicalIdOf('AWS::SQS::Queue', 'ParkedQueue'),
    });
    expect(template.toJSON().Outputs.ParkedQueueArn.Value).toEqual(parkedArn());
    expect(template.toJSON().Outputs.DeadLetterQueueArn.Value).toEqual(dlqArn());
  });

  it('gives the DLQ a visibility timeout of 6x the function timeout, enough for one record', () => {
    const [[, fn]] = ofType('AWS::Lambda::Function') as [[string, Resource]];
    const timeout = fn.Properties.Timeout as number;
    const dlq = resources[logicalIdOf('AWS::SQS::Queue', 'DeadLetterQueue')]!.Properties;
    expect(dlq.VisibilityTimeout).toBe(6 * timeout);
    expect(dlq.VisibilityTimeout).toBe(180);
    // the handler starts no record with less than MIN_RECORD_BUDGET_MS left: an invocation must fit one
    expect(MIN_RECORD_BUDGET_MS).toBeLessThan(timeout * 1000);
  });

  it('parks what the redrive failed on 3 times in an encrypted, TLS-only queue kept 14 days', () => {
    const dlq = resources[logicalIdOf('AWS::SQS::Queue', 'DeadLetterQueue')]!;
    expect(dlq.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: parkedArn(), maxReceiveCount: 3 });
    const parkedId = logicalIdOf('AWS::SQS::Queue', 'ParkedQueue');
    const parked = resources[parkedId]!;
    expect(parked.Properties).toMatchObject({ MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true });
    // the end of the line: no further dead-letter queue
    expect(parked.Properties.RedrivePolicy).toBeUndefined();
    expect(parked.DeletionPolicy).toBe('Retain');
    const policies = ofType('AWS::SQS::QueuePolicy').map(([, p]) => p.Properties);
    const parkedPolicy = policies.find(
      (p) => JSON.stringify(p.Queues) === JSON.stringify([{ Ref: parkedId }]),
    );
    expect(parkedPolicy?.PolicyDocument.Statement).toEqual([
      {
        Action: 'sqs:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Resource: parkedArn(),
      },
    ]);
  });

  it('lets the function consume and send only on the DLQ and the delivery queue (never the parked queue)', () => {
    const sqs = allStatements(resources).filter((s) =>
      asList<string>(s.Action).some((a) => a.startsWith('sqs:')),
    );
    const deliveryArn = { 'Fn::GetAtt': [logicalIdOf('AWS::SQS::Queue', 'DeliveryQueue'), 'Arn'] };
    const consume = sqs.filter((s) => asList<string>(s.Action).includes('sqs:ReceiveMessage'));
    const consumed = consume.flatMap((s) => asList<Cfn>(s.Resource));
    expect(consumed).toEqual(expect.arrayContaining([dlqArn(), deliveryArn]));
    expect(consumed).toHaveLength(2);
    for (const c of consume) {
      expect(c.Effect).toBe('Allow');
      expect(c.Action).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
      expect(c.Condition).toBeUndefined();
    }
    for (const s of sqs) {
      for (const r of asList<Cfn>(s.Resource)) expect([dlqArn(), deliveryArn]).toContainEqual(r);
      expect(asList<string>(s.Action)).not.toContain('sqs:*');
      // only what the destination (send) and the event source (consume) need
      for (const a of asList<string>(s.Action)) {
        expect([
          'sqs:SendMessage',
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueAttributes',
          'sqs:GetQueueUrl',
        ]).toContain(a);
      }
    }
    expect(JSON.stringify(allStatements(resources))).not.toContain(
      logicalIdOf('AWS::SQS::Queue', 'ParkedQueue'),
    );
  });
});

describe('the delivery queue', () => {
  const queueId = () => logicalIdOf('AWS::SQS::Queue', 'DeliveryQueue');
  const bucketId = () => logicalIdOf('AWS::S3::Bucket', 'DeliveryBucket');

  it('is encrypted, TLS-only, kept 14 days, and redrives to the DLQ after delivery.maxReceives receives', () => {
    const q = resources[queueId()]!;
    expect(q.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
      VisibilityTimeout: 6 * 30,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [logicalIdOf('AWS::SQS::Queue', 'DeadLetterQueue'), 'Arn'] },
        maxReceiveCount: DEFAULT_DELIVERY.maxReceives,
      },
    });
    const policy = ofType('AWS::SQS::QueuePolicy').find(([, p]) =>
      JSON.stringify(p.Properties.Queues).includes(queueId()),
    )!;
    expect(JSON.stringify(policy[1].Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
  });

  it('is consumed with maxConcurrency = delivery.maxConnections, batches of 100 in a 1 s window, item failures', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping').filter(([, m]) =>
      JSON.stringify(m.Properties.EventSourceArn).includes(queueId()),
    );
    expect(mappings).toHaveLength(1);
    expect(mappings[0]![1].Properties).toMatchObject({
      BatchSize: DEFAULT_DELIVERY.batchSize,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: DEFAULT_DELIVERY.maxConnections },
    });
    expect(mappings[0]![1].Properties.Enabled).not.toBe(false);
  });

  it('stores large messages in an encrypted, private, TLS-only bucket that expires them after 14 days', () => {
    const b = resources[bucketId()]!;
    expect(b.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: { Rules: [{ Prefix: 'queued/', ExpirationInDays: 14, Status: 'Enabled' }] },
    });
    const [[, bp]] = ofType('AWS::S3::BucketPolicy') as [[string, Resource]];
    expect(JSON.stringify(bp.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
  });

  it('tells the function where the queue, the bucket and the DLQ are', () => {
    const [[, fn]] = ofType('AWS::Lambda::Function') as [[string, Resource]];
    expect(fn.Properties.Environment.Variables).toMatchObject({
      DELIVERY_QUEUE_URL: { Ref: queueId() },
      DELIVERY_BUCKET: { Ref: bucketId() },
      DEAD_LETTER_QUEUE_URL: { Ref: logicalIdOf('AWS::SQS::Queue', 'DeadLetterQueue') },
    });
  });

  it('lets the function put, get and delete only stored messages (queued/*) in the bucket', () => {
    const s3 = allStatements(resources).filter((s) =>
      asList<string>(s.Action).some((a) => a.startsWith('s3:')),
    );
    expect(s3).toHaveLength(1);
    expect(asList<string>(s3[0]!.Action).sort()).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:PutObject']);
    expect(s3[0]!.Resource).toEqual({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId(), 'Arn'] }, '/queued/*']],
    });
  });

  it('alarms: oldest queued message > 5 min, 5xx answers per HTTP route, partial batches, old deferrals', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const age = alarms.find((a) => a.MetricName === 'ApproximateAgeOfOldestMessage')!;
    expect(age).toMatchObject({
      Threshold: 300,
      ComparisonOperator: 'GreaterThanThreshold',
      Namespace: 'AWS/SQS',
    });
    expect(age.Dimensions).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId(), 'QueueName'] } },
    ]);
    const filters = Object.fromEntries(
      ofType('AWS::Logs::MetricFilter').map(([, f]) => [
        f.Properties.MetricTransformations[0].MetricName,
        f.Properties.FilterPattern,
      ]),
    );
    expect(filters).toEqual({
      DeliveryUnknown: '{ ($.outcome = "unknown") || ($.code = "delivery_unknown") }',
      SendRoute5xx: '{ ($.entryPoint = "http_send") && ($.status >= 500) }',
      FormRoute5xx: '{ ($.entryPoint = "http_form") && ($.status >= 500) }',
      BatchPartialFailure: '{ $.code = "batch_partial_failure" }',
      DeferredOverAnHour:
        '{ (($.reason = "deferred") || ($.code = "recipient_deferred")) && ($.queuedForSeconds > 3600) }',
    });
    for (const name of Object.keys(filters)) {
      expect(
        alarms.filter((a) => a.MetricName === name),
        name,
      ).toHaveLength(1);
    }
  });
});

describe('construct variants', { timeout: 90_000 }, () => {
  it('scales the DLQ visibility timeout with the function timeout, and can create the mapping enabled', () => {
    const { template: t, endpoint } = synthConstruct({ timeout: Duration.seconds(60), redriveEnabled: true });
    t.hasResourceProperties('AWS::Lambda::Function', { Timeout: 60 });
    t.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 360 });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', { Enabled: true, BatchSize: 5 });
    // The DLQ hands what the redrive keeps failing on to the parked queue.
    t.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 360,
      RedrivePolicy: {
        deadLetterTargetArn: endpoint.parkedQueue.stack.resolve(endpoint.parkedQueue.queueArn),
      },
    });
  });

  it('warns when reserved concurrency is below the redrive mapping maximum (throttled receives park messages)', () => {
    const warningsOf = (reservedConcurrency: number) =>
      Annotations.fromStack(synthConstruct({ reservedConcurrency }).stack).findWarning(
        '*',
        Match.stringLikeRegexp('redrive'),
      );
    expect(warningsOf(1)).toHaveLength(1);
    expect(warningsOf(2)).toEqual([]);
  });

  it('creates a placeholder secret and decrypts with a given CMK only through Secrets Manager', () => {
    const { template: t } = synthConstruct({ smtpSecret: { create: true } }, (s) => ({
      secretsKey: new Key(s, 'Key', { enableKeyRotation: true }),
    }));
    const res = t.toJSON().Resources as Record<string, Resource>;
    const [[secretId, secret]] = ofType('AWS::SecretsManager::Secret', res) as [[string, Resource]];
    const tmpl = JSON.parse(secret.Properties.GenerateSecretString.SecretStringTemplate);
    expect(tmpl).toEqual({ host: '', port: 587, security: 'starttls', username: '', from: '' });
    expect(secret.Properties.GenerateSecretString.GenerateStringKey).toBe('password');
    expect(secret.DeletionPolicy).toBe('Retain');
    expect(JSON.stringify(secret.Properties.KmsKeyId)).toContain('Key');
    const [[, fn]] = ofType('AWS::Lambda::Function', res) as [[string, Resource]];
    expect(fn.Properties.Environment.Variables.SMTP_SECRET_ID).toEqual({ Ref: secretId });
    const statements = allStatements(res);
    const read = statements.find((s) => s.Action === 'secretsmanager:GetSecretValue')!;
    expect(read.Resource).toContainEqual({ Ref: secretId });
    const kms = statements.filter((s) => JSON.stringify(s.Action).includes('kms:'));
    expect(kms).toHaveLength(1);
    expect(kms[0]!.Action).toBe('kms:Decrypt');
    expect(JSON.stringify(kms[0]!.Condition)).toContain('secretsmanager.');
  });

  it('uses a secret given by complete ARN as SMTP_SECRET_ID and policy resource', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:smtp-AbCdEf';
    const { template: t } = synthConstruct({ smtpSecret: { secretArn: arn }, config: {} });
    const res = t.toJSON().Resources as Record<string, Resource>;
    const [[, fn]] = ofType('AWS::Lambda::Function', res) as [[string, Resource]];
    expect(fn.Properties.Environment.Variables.SMTP_SECRET_ID).toBe(arn);
    const read = allStatements(res).find((s) => s.Action === 'secretsmanager:GetSecretValue')!;
    expect(read.Resource).toBe(arn);
  });

  it('smtpSecretWriteBack: PutSecretValue on exactly the SMTP secret (off by default), GenerateDataKey with a CMK', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:smtp-AbCdEf';
    const writes = (res: Record<string, Resource>) =>
      allStatements(res).filter((s) => JSON.stringify(s.Action).includes('secretsmanager:PutSecretValue'));
    const off = synthConstruct({ smtpSecret: { secretArn: arn }, config: {} }).template.toJSON();
    expect(writes(off.Resources)).toEqual([]);
    const on = synthConstruct({ smtpSecret: { secretArn: arn }, config: {}, smtpSecretWriteBack: true });
    const res = on.template.toJSON().Resources as Record<string, Resource>;
    expect(writes(res)).toEqual([
      { Sid: 'WriteBackSmtpSecret', Effect: 'Allow', Action: 'secretsmanager:PutSecretValue', Resource: arn },
    ]);
    const cmk = synthConstruct({ smtpSecretWriteBack: true }, (s) => ({ secretsKey: new Key(s, 'K') }));
    const kms = allStatements(cmk.template.toJSON().Resources).filter((x) =>
      JSON.stringify(x.Action).includes('kms:'),
    );
    expect(kms.map((x) => x.Action)).toEqual([['kms:Decrypt', 'kms:GenerateDataKey']]);
    expect(JSON.stringify(kms[0]!.Condition)).toContain('secretsmanager.');
  });

  it('places the function in a VPC with inline ENI permissions, still no managed policy', () => {
    const { template: t } = synthConstruct({}, (s) => ({
      vpc: Vpc.fromVpcAttributes(s, 'Vpc', {
        vpcId: 'vpc-12345678',
        availabilityZones: ['eu-west-1a', 'eu-west-1b'],
        privateSubnetIds: ['subnet-aaaa1111', 'subnet-bbbb2222'],
      }),
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
    }));
    const res = t.toJSON().Resources as Record<string, Resource>;
    const [[, fn]] = ofType('AWS::Lambda::Function', res) as [[string, Resource]];
    expect(fn.Properties.VpcConfig.SubnetIds).toEqual(['subnet-aaaa1111', 'subnet-bbbb2222']);
    const [[, role]] = ofType('AWS::IAM::Role', res) as [[string, Resource]];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const eni = allStatements(res).find((s) => asList(s.Action).includes('ec2:CreateNetworkInterface'));
    expect(eni?.Resource).toBe('*');
  });

  it('matches any source when no eventSources are given, and honours custom throttles and TTLs', () => {
    const { template: t } = synthConstruct({
      throttle: { rateLimit: 50, burstLimit: 100 },
      formsThrottle: { rateLimit: 1, burstLimit: 1 },
      secretTtl: Duration.minutes(1),
      smtpReuse: false,
      logLevel: 'DEBUG',
    });
    t.hasResourceProperties('AWS::Events::Rule', { EventPattern: { 'detail-type': ['Send Email'] } });
    const rule = Object.values(t.findResources('AWS::Events::Rule'))[0] as Resource;
    expect(rule.Properties.EventPattern.source).toBeUndefined();
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      RouteSettings: { 'POST /forms/{formId}': { ThrottlingRateLimit: 1, ThrottlingBurstLimit: 1 } },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          SECRET_TTL_SECONDS: '60',
          SMTP_REUSE: 'false',
          POWERTOOLS_LOG_LEVEL: 'DEBUG',
        }),
      },
    });
    // no topic unless asked for: alarms exist without actions
    expect(Object.keys(t.findResources('AWS::SNS::Topic'))).toHaveLength(0);
    for (const a of Object.values(t.findResources('AWS::CloudWatch::Alarm')) as Resource[]) {
      expect(a.Properties.AlarmActions).toBeUndefined();
    }
  });

  it('addEventRule turns any event into a send request with an input transformer', () => {
    const { endpoint, template: before } = synthConstruct({});
    expect(Object.keys(before.findResources('AWS::Events::Rule'))).toHaveLength(1);
    const app = new App({ outdir: `${work.dir}/out-${++outCount}`, builtinCloudFormationValidation: false });
    const s = new Stack(app, 'Rules');
    const e = new SmtpSendEndpoint(s, 'Endpoint', { config: SAMPLE_CONFIG, code: Code.fromAsset(bundleDir) });
    e.addEventRule('OrderShipped', {
      eventPattern: { source: ['shop.orders'], detailType: ['Order Shipped'] },
      message: {
        to: EventField.fromPath('$.detail.customerEmail'),
        subject: `Order ${EventField.fromPath('$.detail.orderId')} shipped`,
        text: 'Tracking: ' + EventField.fromPath('$.detail.tracking'),
      },
    });
    const t = Template.fromStack(s);
    const rules = Object.values(t.findResources('AWS::Events::Rule')) as Resource[];
    const rule = rules.find((r) => r.Properties.EventPattern.source?.[0] === 'shop.orders')!;
    const delivered = renderInputTransformer(rule.Properties.Targets[0].InputTransformer, {
      ...ALARM_EVENT,
      source: 'shop.orders',
      'detail-type': 'Order Shipped',
      detail: { customerEmail: 'ann@example.com', orderId: 'A-17', tracking: 'ZX9-express' },
    });
    expect(isEventBridgeEvent(delivered)).toBe(true);
    expect(delivered).toMatchObject({
      'detail-type': HANDLED_DETAIL_TYPE,
      source: 'shop.orders',
      detail: { to: 'ann@example.com', subject: 'Order A-17 shipped', text: 'Tracking: ZX9-express' },
    });
    expect(endpoint).toBeInstanceOf(SmtpSendEndpoint);
  });

  it('grantSend lets another role call POST /send on the $default stage, and nothing else', () => {
    const app = new App({ outdir: `${work.dir}/out-${++outCount}`, builtinCloudFormationValidation: false });
    const s = new Stack(app, 'Grants');
    const e = new SmtpSendEndpoint(s, 'Endpoint', { config: SAMPLE_CONFIG, code: Code.fromAsset(bundleDir) });
    const caller = new Role(s, 'Caller', { assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com') });
    e.grantSend(caller);
    const t = Template.fromStack(s);
    const policies = Object.values(t.findResources('AWS::IAM::Policy')) as Resource[];
    const callerPolicy = policies.find((p) => JSON.stringify(p.Properties.Roles).includes('Caller'))!;
    const [statement] = callerPolicy.Properties.PolicyDocument.Statement;
    expect(statement.Action).toBe('execute-api:Invoke');
    const arn = JSON.stringify(s.resolve(statement.Resource));
    expect(arn).toContain(':execute-api:');
    expect(arn).toContain('/$default/POST/send');
  });

  it('grantStatus lets another role call GET /messages/* on the $default stage, and nothing else', () => {
    const app = new App({ outdir: `${work.dir}/out-${++outCount}`, builtinCloudFormationValidation: false });
    const s = new Stack(app, 'StatusGrants');
    const e = new SmtpSendEndpoint(s, 'Endpoint', { config: SAMPLE_CONFIG, code: Code.fromAsset(bundleDir) });
    const caller = new Role(s, 'Caller', { assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com') });
    e.grantStatus(caller);
    const policies = Object.values(Template.fromStack(s).findResources('AWS::IAM::Policy')) as Resource[];
    const callerPolicy = policies.find((p) => JSON.stringify(p.Properties.Roles).includes('Caller'))!;
    expect(callerPolicy.Properties.PolicyDocument.Statement).toHaveLength(1);
    const [statement] = callerPolicy.Properties.PolicyDocument.Statement;
    expect(statement.Action).toBe('execute-api:Invoke');
    expect(JSON.stringify(s.resolve(statement.Resource))).toContain('/$default/GET/messages/*');
    const off = new SmtpSendEndpoint(s, 'Off', {
      config: SAMPLE_CONFIG,
      code: Code.fromAsset(bundleDir),
      idempotency: false,
    });
    expect(() => off.grantStatus(caller)).toThrow(/needs idempotency/u);
  });

  it('delivers a large configuration as a file (and refuses to inline one over 4 KB)', () => {
    const big = largeConfig();
    expect(JSON.stringify(big).length).toBeGreaterThan(4096);
    expect(() => synthConstruct({ config: big })).toThrow(/needs bundling/);
    expect(() => synthConstruct({ config: big, configDelivery: 'env' })).toThrow(/Lambda allows 4096/);
    const small = synthConstruct({ config: SAMPLE_CONFIG, configDelivery: 'auto' });
    expect(small.endpoint.configDelivery).toBe('env');
  });
});
