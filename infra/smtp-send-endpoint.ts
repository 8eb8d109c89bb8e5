/**
 * `SmtpSendEndpoint`: the reusable L3 construct that deploys the SMTP send endpoint.
 *
 * One Lambda function (our own SMTP client, bundled locally by esbuild) behind four entry points:
 * - HTTP API `POST /send` (IAM/SigV4 auth) for services,
 * - HTTP API `POST|OPTIONS /forms/{formId}` (public) for browser contact forms,
 * - an EventBridge rule (`detail-type: "Send Email"`) plus `addEventRule()` for any other event,
 * - direct `lambda:InvokeFunction`.
 * Asynchronous invocations (EventBridge, `--invocation-type Event`) retry twice and end in an encrypted SQS
 * dead-letter queue. An SQS event source mapping from that queue back to the function (disabled until an operator
 * enables it) redrives it; a record the redrive keeps failing is moved after 3 receives to the "parked" queue (the
 * DLQ's own dead-letter queue). Alarms watch errors, throttles, unknown deliveries and both queues' depth.
 *
 * The constructor only composes private builders, one per part (the way aws-solutions-constructs composes its
 * patterns): `resolveSmtpSecret`, `buildRole`, `buildEnvironment`, `buildFunction`, `buildAsyncFailurePath`,
 * `buildHttpApi`, `buildSendEmailRule`, `buildAlarmTopic`, `buildAlarms`. A new part is a builder of its own and
 * one line in the constructor.
 */

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Annotations,
  ArnFormat,
  AssetHashType,
  type DockerImage,
  Duration,
  RemovalPolicy,
  Stack,
  Stage,
  Token,
  Validations,
} from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  type CfnStage,
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import {
  Alarm,
  type AlarmProps,
  ComparisonOperator,
  type IMetric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import {
  EventBus,
  EventField,
  type EventPattern,
  type IEventBus,
  Rule,
  RuleTargetInput,
} from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import {
  Grant,
  type IGrantable,
  PolicyDocument,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, Code, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import {
  FilterPattern,
  type IFilterPattern,
  LogGroup,
  MetricFilter,
  RetentionDays,
} from 'aws-cdk-lib/aws-logs';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import { type EndpointConfigInput, resolveDelivery } from '../functions/config/endpoint.ts';
import { SEND_EMAIL_DETAIL_TYPE } from '../functions/handlers/detail-type.ts';
import { STORED_PREFIX } from '../functions/queue/sqs-delivery-queue.ts';
import { SEND_RECORDS_TABLE } from '../functions/store/table-shape.ts';
import { esbuildOptions, esbuildTarget } from '../scripts/build.ts';

/** Repository root (this file lives in `<root>/infra/`). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The `detail-type` the function handles (functions/handlers/detail-type.ts). */
export { SEND_EMAIL_DETAIL_TYPE };

/** Name of the configuration file shipped next to the bundle when the config is delivered as a file. */
export const CONFIG_FILE_NAME = 'endpoint-config.json';

/**
 * Lambda allows 4 KB for all environment variables together (keys + values). The configuration is inlined
 * only while the whole environment stays under this budget; above it the config ships as a file in the bundle.
 */
export const INLINE_ENV_BUDGET_BYTES = 3 * 1024;

/** Receives of a DLQ message (redrive attempts) before SQS moves it to the parked queue. */
export const PARKED_MAX_RECEIVE_COUNT = 3;
/** The DLQ's visibility timeout is this many times the function timeout (Lambda's advice for SQS sources). */
export const REDRIVE_VISIBILITY_FACTOR = 6;
/** How long the delivery queue (and the bucket of large queued messages) keeps a message: SQS's maximum. */
export const DELIVERY_RETENTION_DAYS = 14;
/**
 * The most the delivery variables take of Lambda's 4 KB: `DELIVERY_QUEUE_URL` and `DEAD_LETTER_QUEUE_URL` (queue
 * URLs: `https://sqs.<region>.amazonaws.com/<account>/<name of up to 80>`, under 140 bytes) and `DELIVERY_BUCKET`
 * (a bucket name, at most 63).
 */
export const DELIVERY_ENV_BYTES =
  'DELIVERY_QUEUE_URL'.length + 'DEAD_LETTER_QUEUE_URL'.length + 'DELIVERY_BUCKET'.length + 2 * 140 + 63;
/** The delivery queue's oldest message older than this pages someone. */
export const DELIVERY_AGE_ALARM_SECONDS = 300;
/** A recipient still deferred (4xx at RCPT) this long after the message was first queued pages someone. */
export const DEFERRED_ALARM_SECONDS = 3600;
/** Records per redrive invocation. */
export const REDRIVE_BATCH_SIZE = 5;
/** Concurrent redrive invocations (2 is the minimum Lambda accepts). */
export const REDRIVE_MAX_CONCURRENCY = 2;

/** The stage's JSON access log line: one field per `$context` variable. */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  caller: '$context.identity.userArn',
  userAgent: '$context.identity.userAgent',
  routeKey: '$context.routeKey',
  status: '$context.status',
  responseLength: '$context.responseLength',
  latency: '$context.responseLatency',
  integrationStatus: '$context.integrationStatus',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
};

/** Where the SMTP credentials (`{ host, port?, security?, username, password, from, ... }`) come from. */
export type SmtpSecretSource =
  /** An existing secret, by name (e.g. `smtp-send-endpoint/smtp`). */
  | { readonly secretName: string }
  /** An existing secret, by its complete ARN (with the 6-character suffix). */
  | { readonly secretArn: string }
  /** A secret defined elsewhere in your CDK app. */
  | { readonly secret: ISecret }
  /**
   * Create a placeholder secret in the JSON shape the function expects (random `password`, empty `host`,
   * `username`, `from`) for you to fill with `aws secretsmanager put-secret-value`.
   */
  | { readonly create: true; readonly secretName?: string };

/** HTTP API throttling: steady-state requests per second and burst bucket size. */
export interface ThrottleProps {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

export interface SmtpSendEndpointProps {
  /**
   * Endpoint configuration: `/send` recipient and sender allowlists, limits, and the public forms (fixed
   * recipients, allowed origins, redirect + allowlist, CAPTCHA with the id of its secret). Shape and validation:
   * `functions/config/endpoint.ts` (`EndpointConfigSchema`); see docs/architecture.md.
   */
  readonly config: EndpointConfigInput;
  /**
   * How the configuration reaches the function. `env`: inline JSON in `ENDPOINT_CONFIG`; `file`: a JSON file
   * copied into the bundle, named by `ENDPOINT_CONFIG_FILE`; `auto`: inline while the environment stays under
   * {@link INLINE_ENV_BUDGET_BYTES}, else file.
   * @default 'auto'
   */
  readonly configDelivery?: 'auto' | 'env' | 'file';
  /** The SMTP credentials secret. @default { create: true } */
  readonly smtpSecret?: SmtpSecretSource;
  /**
   * Customer-managed KMS key that encrypts the SMTP/CAPTCHA secrets (and a created secret). Only when given does
   * the function get `kms:Decrypt` (restricted to calls made through Secrets Manager). Secrets under the AWS-managed
   * `aws/secretsmanager` key need no grant.
   * @default - secrets use the AWS-managed key
   */
  readonly secretsKey?: IKey;
  /** How long a warm function caches the secret value (`SECRET_TTL_SECONDS`). @default Duration.minutes(5) */
  readonly secretTtl?: Duration;
  /**
   * Let the function write a rotated OAuth refresh token back to the SMTP secret (`auth.grant: "refresh_token"`
   * with `"writeBack": true`): `secretsmanager:PutSecretValue` on exactly that secret (and, with `secretsKey`,
   * `kms:GenerateDataKey` through Secrets Manager). Off: the function can only read its secrets.
   * @default false
   */
  readonly smtpSecretWriteBack?: boolean;
  /** Keep the authenticated SMTP session open between invocations of a warm instance (`SMTP_REUSE`). @default true */
  readonly smtpReuse?: boolean;
  /** Close a reused SMTP session after this idle time (`SMTP_IDLE_SECONDS`). @default Duration.seconds(60) */
  readonly smtpIdleTimeout?: Duration;
  /** `POWERTOOLS_SERVICE_NAME`. @default 'smtp-send-endpoint' */
  readonly serviceName?: string;
  /** `POWERTOOLS_LOG_LEVEL`. @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * Reserved concurrency: caps parallel SMTP sessions (providers limit connections and send rates; Amazon SES
   * answers `454 Throttling failure`). Note that an account must keep 10 unreserved executions: on accounts
   * whose concurrency quota is still 10, any value fails the deployment — leave it undefined there.
   * @default - no reservation (account-level concurrency)
   */
  readonly reservedConcurrency?: number;
  /** @default 256 (see the comment on the function) */
  readonly memorySize?: number;
  /** @default Duration.seconds(30) (see the comment on the function) */
  readonly timeout?: Duration;
  /** Lambda runtime. @default Runtime.NODEJS_24_X */
  readonly runtime?: Runtime;
  /** Retention of the function's and the API's log groups. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Create the dead-letter redrive mapping (DLQ → function) enabled. Leave it disabled and let an operator enable it
   * once the cause of the failures is fixed (`aws lambda update-event-source-mapping --uuid … --enabled`, see
   * docs/deploy.md): enabled all the time it would retry every failure for as long as the cause lasts.
   * @default false
   */
  readonly redriveEnabled?: boolean;
  /**
   * Idempotency and message status: a DynamoDB table of send records (on demand, TTL, point-in-time recovery,
   * encrypted), `IDEMPOTENCY_TABLE_NAME`, and the route `GET /messages/{messageId}` (IAM). `false`: none of it —
   * nothing is deduplicated, a request with its own idempotency key is refused, no message status.
   * @default true
   */
  readonly idempotency?: boolean;
  /**
   * Removal policy of the stateful parts: the log groups, the dead-letter and parked queues, the send records
   * table and a created secret.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /** Default stage throttling for every route. @default { rateLimit: 10, burstLimit: 20 } */
  readonly throttle?: ThrottleProps;
  /** Throttling of the public form routes (`POST|OPTIONS /forms/{formId}`). @default { rateLimit: 2, burstLimit: 5 } */
  readonly formsThrottle?: ThrottleProps;
  /** An existing SNS topic for the alarms. */
  readonly alarmTopic?: ITopic;
  /**
   * Create an SNS topic for the alarms and subscribe these addresses (each must confirm the subscription).
   * Ignored when `alarmTopic` is given.
   * @default - no topic unless `createAlarmTopic`
   */
  readonly alarmEmails?: readonly string[];
  /** Create an alarm topic even without email subscriptions. @default false */
  readonly createAlarmTopic?: boolean;
  /**
   * Place the function in a VPC, e.g. to reach a private SMTP relay. The subnets then need a route to Secrets
   * Manager: a `secretsmanager` interface VPC endpoint or a NAT gateway (and a NAT or relay for the SMTP host).
   * @default - not in a VPC
   */
  readonly vpc?: IVpc;
  /** @default - private subnets with egress of `vpc` */
  readonly vpcSubnets?: SubnetSelection;
  /** @default - a new security group allowing all outbound traffic */
  readonly securityGroups?: ISecurityGroup[];
  /** The bus of the `Send Email` rule. @default the account's default event bus */
  readonly eventBus?: IEventBus;
  /**
   * `source` values the `Send Email` rule accepts (a filter, not a security boundary: callers choose their
   * source freely except `aws.*`).
   * @default - any source
   */
  readonly eventSources?: readonly string[];
  /** Entry file of the Lambda handler. @default `<root>/functions/handlers/index.ts` */
  readonly entry?: string;
  /** Directory holding package.json / package-lock.json for bundling. @default the repository root */
  readonly projectRoot?: string;
  /**
   * Prebuilt code instead of bundling `entry` (tests build one esbuild bundle once and reuse it). The bundle must
   * export `handler` from `index.mjs`. Not combinable with file delivery of the config.
   * @default - `entry` is bundled with esbuild
   */
  readonly code?: Code;
}

/** Options of {@link SmtpSendEndpoint.addEventRule}. */
export interface EventRuleOptions {
  /** Which events trigger a message. */
  readonly eventPattern: EventPattern;
  /**
   * The send request (`{ to, subject, text, ... }`) that becomes the `detail` of the "Send Email" event the
   * function receives; `EventField.fromPath('$.detail.x')` inserts values of the matched event. As a whole value
   * (`to: EventField.fromPath(...)`) it is inserted as JSON; inside a string EventBridge inserts it WITHOUT
   * escaping, so only use fields there that cannot contain `"` or `\` (ids, names, states, times).
   */
  readonly message: Record<string, unknown>;
  /** @default the construct's event bus */
  readonly eventBus?: IEventBus;
  readonly description?: string;
}

export class SmtpSendEndpoint extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogGroup: LogGroup;
  readonly deadLetterQueue: Queue;
  /** The DLQ's own dead-letter queue: records the redrive failed {@link PARKED_MAX_RECEIVE_COUNT} times. */
  readonly parkedQueue: Queue;
  /** The SQS event source (DLQ → function) that redrives the dead-letter queue. */
  readonly redriveEventSource: SqsEventSource;
  /** Queued, `sync-then-queue` and deferred messages; after `delivery.maxReceives` receives, the DLQ. */
  readonly deliveryQueue: Queue;
  /** Queued messages over SQS's 256 KiB (`queued/…`), deleted after delivery, expired after 14 days. */
  readonly deliveryBucket: Bucket;
  /** The delivery queue → function mapping: `maxConcurrency` = `delivery.maxConnections`. */
  readonly deliveryEventSource: SqsEventSource;
  readonly sendEmailRule: Rule;
  readonly eventBus: IEventBus;
  /** The SMTP secret; `smtpSecretId` is what the function receives in `SMTP_SECRET_ID`. */
  readonly smtpSecret: ISecret;
  readonly smtpSecretId: string;
  readonly alarmTopic?: ITopic;
  readonly alarms: Alarm[];
  /** The send records (idempotency + message status); undefined with `idempotency: false`. */
  readonly sendRecordsTable?: Table;
  /** How the configuration was delivered (after resolving `auto`). */
  readonly configDelivery: 'env' | 'file';

  constructor(scope: Construct, id: string, props: SmtpSendEndpointProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const { secret, secretId } = this.resolveSmtpSecret(
      props.smtpSecret ?? { create: true },
      removalPolicy,
      props.secretsKey,
    );
    this.smtpSecret = secret;
    this.smtpSecretId = secretId;
    this.logGroup = new LogGroup(this, 'FunctionLogs', { retention: logRetention, removalPolicy });
    this.sendRecordsTable = this.buildSendRecordsTable(props, removalPolicy);
    this.role = this.buildRole(props);
    const { environment, delivery, configFile } = this.buildEnvironment(props);
    this.configDelivery = delivery;
    this.function = this.buildFunction(props, environment, configFile);
    const asyncFailure = this.buildAsyncFailurePath(props, removalPolicy);
    this.parkedQueue = asyncFailure.parkedQueue;
    this.deadLetterQueue = asyncFailure.deadLetterQueue;
    this.redriveEventSource = asyncFailure.redriveEventSource;
    const queued = this.buildDeliveryQueue(props, removalPolicy);
    this.deliveryQueue = queued.deliveryQueue;
    this.deliveryBucket = queued.deliveryBucket;
    this.deliveryEventSource = queued.deliveryEventSource;
    const http = this.buildHttpApi(props, logRetention, removalPolicy);
    this.httpApi = http.httpApi;
    this.accessLogGroup = http.accessLogGroup;
    this.stage = http.stage;
    this.eventBus = props.eventBus ?? EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    this.sendEmailRule = this.buildSendEmailRule(props);
    this.alarmTopic = this.buildAlarmTopic(props);
    this.alarms = this.buildAlarms();
  }

  /**
   * The send records: one table, on demand, TTL on `expiration`, point-in-time recovery, KMS-encrypted (AWS
   * managed key), the `byMessageId` index for status look-ups. The same removal policy as the queues.
   */
  private buildSendRecordsTable(
    props: SmtpSendEndpointProps,
    removalPolicy: RemovalPolicy,
  ): Table | undefined {
    if (props.idempotency === false) {
      // The shared sending rate lives in this table: refused at synth, not discovered as a 500 at run time.
      if (props.config?.delivery?.maxPerSecond !== undefined) {
        throw new Error('SmtpSendEndpoint: delivery.maxPerSecond needs idempotency (the send records table)');
      }
      return undefined;
    }
    const T = SEND_RECORDS_TABLE;
    const table = new Table(this, 'SendRecords', {
      partitionKey: { name: T.partitionKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: T.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy,
    });
    table.addGlobalSecondaryIndex({
      indexName: T.messageIdIndex,
      partitionKey: { name: T.messageIdAttribute, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
    return table;
  }

  /** The function's own role: inline policies only (its logs, its secrets, the KMS key and VPC ENIs if any). */
  private buildRole(props: SmtpSendEndpointProps): Role {
    const stack = Stack.of(this);
    const secretArns = this.readableSecretArns(props.config);
    const statements = [
      // Lambda writes to the log group given in LoggingConfig; it exists, so no logs:CreateLogGroup.
      new PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
      new PolicyStatement({
        sid: 'ReadSmtpAndCaptchaSecrets',
        actions: ['secretsmanager:GetSecretValue'],
        resources: secretArns,
      }),
    ];
    if (props.smtpSecretWriteBack) {
      statements.push(
        new PolicyStatement({
          sid: 'WriteBackSmtpSecret',
          actions: ['secretsmanager:PutSecretValue'],
          resources: [secretArnForPolicy(this.smtpSecret)],
        }),
      );
    }
    if (this.sendRecordsTable) statements.push(...sendRecordsStatements(this.sendRecordsTable));
    if (props.secretsKey) {
      statements.push(
        new PolicyStatement({
          sid: 'DecryptSecrets',
          actions: props.smtpSecretWriteBack ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'],
          resources: [props.secretsKey.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.${stack.urlSuffix}` },
          },
        }),
      );
    }
    if (props.vpc) {
      // What AWSLambdaVPCAccessExecutionRole grants, inline. These EC2 actions support no resource-level scoping.
      statements.push(
        new PolicyStatement({
          sid: 'ManageVpcNetworkInterfaces',
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
    }
    // Own role, inline policies only: no AWS-managed policy (AWSLambdaBasicExecutionRole would allow writing to
    // every log group of the account).
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description:
        'SMTP send endpoint function: own logs, its secrets, its dead-letter queue (send, and receive for redrive)',
      inlinePolicies: { SmtpSendEndpoint: new PolicyDocument({ statements }) },
    });
    if (props.vpc) {
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ENI management for VPC placement (same actions as AWSLambdaVPCAccessExecutionRole): these EC2 actions ' +
          'do not support resource-level permissions.',
      });
    }
    return role;
  }

  /** ARNs of the secrets the function reads: the SMTP secret and each form's CAPTCHA secret. */
  private readableSecretArns(config: EndpointConfigInput): string[] {
    const secretArns = [secretArnForPolicy(this.smtpSecret)];
    for (const captchaSecretId of captchaSecretIds(config)) {
      secretArns.push(
        captchaSecretId.startsWith('arn:')
          ? captchaSecretId
          : Stack.of(this).formatArn({
              service: 'secretsmanager',
              resource: 'secret',
              // Secrets Manager appends "-" and 6 random characters to every secret's ARN.
              resourceName: `${captchaSecretId}-??????`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
      );
    }
    return secretArns;
  }

  /** The function's environment, with the configuration inline or (too large, or asked for) as a file. */
  private buildEnvironment(props: SmtpSendEndpointProps): {
    environment: Record<string, string>;
    delivery: 'env' | 'file';
    configFile: string | undefined;
  } {
    const baseEnv: Record<string, string> = {
      SMTP_SECRET_ID: this.smtpSecretId,
      SECRET_TTL_SECONDS: String((props.secretTtl ?? Duration.minutes(5)).toSeconds()),
      SMTP_REUSE: String(props.smtpReuse ?? true),
      SMTP_IDLE_SECONDS: String((props.smtpIdleTimeout ?? Duration.seconds(60)).toSeconds()),
      POWERTOOLS_SERVICE_NAME: props.serviceName ?? 'smtp-send-endpoint',
      POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
      ...(this.sendRecordsTable ? { IDEMPOTENCY_TABLE_NAME: this.sendRecordsTable.tableName } : {}),
    };
    const configJson = JSON.stringify(props.config);
    const requested = props.configDelivery ?? 'auto';
    // The delivery queue's variables are added later as tokens: counted here at their largest.
    const inlineSize = envSize({ ...baseEnv, ENDPOINT_CONFIG: configJson }) + DELIVERY_ENV_BYTES;
    const delivery =
      requested === 'auto' ? (inlineSize <= INLINE_ENV_BUDGET_BYTES ? 'env' : 'file') : requested;
    if (delivery === 'env' && inlineSize > 4096) {
      throw new Error(
        `SmtpSendEndpoint: the environment with the inline configuration is ${inlineSize} bytes; Lambda allows ` +
          "4096. Use configDelivery: 'file' (or 'auto').",
      );
    }
    let configFile: string | undefined;
    if (delivery === 'file') {
      if (props.code)
        throw new Error("SmtpSendEndpoint: configDelivery 'file' needs bundling (no prebuilt code)");
      configFile = stageConfigFile(this, configJson);
    }
    const environment = {
      ...baseEnv,
      ...(delivery === 'env'
        ? { ENDPOINT_CONFIG: configJson }
        : // relative paths resolve against LAMBDA_TASK_ROOT (/var/task), where the bundle is unpacked
          { ENDPOINT_CONFIG_FILE: CONFIG_FILE_NAME }),
    };
    return { environment, delivery, configFile };
  }

  /** The Lambda function: prebuilt `code`, or `entry` bundled by esbuild with scripts/build.ts's settings (bundledCode). */
  private buildFunction(
    props: SmtpSendEndpointProps,
    environment: Record<string, string>,
    configFile: string | undefined,
  ): NodejsFunction {
    const runtime = props.runtime ?? Runtime.NODEJS_24_X;
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    return new NodejsFunction(this, 'Function', {
      description: 'SMTP send endpoint: HTTP API /send + /forms, EventBridge, direct invoke',
      runtime,
      architecture: Architecture.ARM_64,
      // 256 MB from the measured table in docs/benchmarks.md ("Memory size"): a warm send waits on the network
      // (same latency at every size, so its cost grows with memory only), a cold one is CPU-bound below ~512 MB
      // (CPU share = memory / 1769 MB): 128 MB saves $0.18 per million warm sends but adds ~0.8 s to every cold
      // one (1.7 s vs 0.9 s); 512 MB takes ~0.26 s off a cold send for +62 % per warm send. 256 MB also leaves
      // room for a 6 MB payload decoded + composed (~30 MB).
      memorySize: props.memorySize ?? 256,
      // 30 s = API Gateway's integration timeout, and longer than the send deadline budget the handler gives the
      // SMTP client (derived from the remaining invocation time), so a slow server ends in a classified SmtpError
      // (not-sent / unknown) reported to the caller instead of Lambda killing the invocation mid-transaction.
      timeout: functionTimeout(props),
      role: this.role,
      logGroup: this.logGroup,
      // The bundle's source maps (what NodejsFunction's `sourceMap: true` sets): stack traces in our own names.
      environment: props.code ? environment : { ...environment, NODE_OPTIONS: '--enable-source-maps' },
      ...(props.reservedConcurrency !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrency }
        : {}),
      ...(props.vpc
        ? {
            vpc: props.vpc,
            ...(props.vpcSubnets ? { vpcSubnets: props.vpcSubnets } : {}),
            ...(props.securityGroups ? { securityGroups: props.securityGroups } : {}),
          }
        : {}),
      ...(props.code
        ? { code: props.code, handler: 'index.handler' }
        : {
            code: bundledCode(props.entry ?? join(projectRoot, 'functions', 'handlers', 'index.ts'), {
              projectRoot,
              target: esbuildTarget(runtime.name),
              image: runtime.bundlingImage,
              configFile,
            }),
            handler: 'index.handler',
          }),
    });
  }

  /**
   * Asynchronous invocations (EventBridge, direct `Event` invokes): two retries, then the dead-letter queue; the
   * redrive mapping (DLQ → function) and the parked queue for what the redrive keeps failing on.
   */
  private buildAsyncFailurePath(
    props: SmtpSendEndpointProps,
    removalPolicy: RemovalPolicy,
  ): { parkedQueue: Queue; deadLetterQueue: Queue; redriveEventSource: SqsEventSource } {
    // The parked queue is the DLQ's own dead-letter queue: what the redrive failed to deliver
    // PARKED_MAX_RECEIVE_COUNT times waits there for a human. SQS keeps a message's original enqueue time when it
    // moves it, so the parked queue gets the same (maximum) retention as the DLQ.
    const parkedQueue = new Queue(this, 'ParkedQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy,
    });
    const deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      // Lambda's advice for an SQS event source: at least 6× the function timeout, so that a batch still being
      // processed (or retried after a throttle) does not become visible to a second poller.
      visibilityTimeout: Duration.seconds(REDRIVE_VISIBILITY_FACTOR * functionTimeout(props).toSeconds()),
      deadLetterQueue: { queue: parkedQueue, maxReceiveCount: PARKED_MAX_RECEIVE_COUNT },
      removalPolicy,
    });
    this.function.configureAsyncInvoke({
      retryAttempts: 2,
      // An alert or notification older than an hour has lost its point; it waits in the DLQ for a human.
      maxEventAge: Duration.hours(1),
      onFailure: new SqsDestination(deadLetterQueue),
    });
    // Redrive: DLQ → the same function (functions/handlers/sqs.ts), which re-runs each record through its original
    // entry point and answers { batchItemFailures }. Disabled by default: an operator enables it after fixing the
    // cause. A small batch keeps each record's share of the 30 s (the handler stops starting records when too little
    // time is left), and 2 concurrent batches (the minimum) keep the load on the mail server low.
    const redriveEventSource = new SqsEventSource(deadLetterQueue, {
      enabled: props.redriveEnabled ?? false,
      reportBatchItemFailures: true,
      batchSize: REDRIVE_BATCH_SIZE,
      maxConcurrency: REDRIVE_MAX_CONCURRENCY,
    });
    this.function.addEventSource(redriveEventSource);
    if (props.reservedConcurrency !== undefined && props.reservedConcurrency < REDRIVE_MAX_CONCURRENCY) {
      // A throttled SQS batch goes back to the queue and its receive still counts toward maxReceiveCount: with less
      // reserved concurrency than the mapping's maximum, the redrive would park messages it never ran.
      Annotations.of(this).addWarningV2(
        'smtp-send-endpoint:redriveThrottled',
        `reservedConcurrency ${props.reservedConcurrency} is below the redrive mapping's maximum concurrency ` +
          `(${REDRIVE_MAX_CONCURRENCY}): redrive batches will be throttled, and each throttled receive counts ` +
          `toward the ${PARKED_MAX_RECEIVE_COUNT} that park a message.`,
      );
    }
    return { parkedQueue, deadLetterQueue, redriveEventSource };
  }

  /**
   * The delivery queue (queued, `sync-then-queue` and deferred messages), its S3 bucket for messages over SQS's
   * 256 KiB, and the event source mapping that delivers it: at most `delivery.maxConnections` concurrent batches
   * (so at most that many SMTP sessions), one session per batch, `ReportBatchItemFailures`; after
   * `delivery.maxReceives` receives SQS moves a message to the dead-letter queue.
   */
  private buildDeliveryQueue(
    props: SmtpSendEndpointProps,
    removalPolicy: RemovalPolicy,
  ): { deliveryQueue: Queue; deliveryBucket: Bucket; deliveryEventSource: SqsEventSource } {
    const delivery = resolveDelivery({ delivery: props.config.delivery });
    const deliveryBucket = new Bucket(this, 'DeliveryBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // A stored message is deleted once delivered; what is left (dead-lettered, unknown) expires with the queues.
      lifecycleRules: [{ prefix: STORED_PREFIX, expiration: Duration.days(DELIVERY_RETENTION_DAYS) }],
      removalPolicy,
    });
    Validations.of(deliveryBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'Transient store of queued messages over 256 KiB, written, read and deleted only by the function; ' +
        'server access logs would only keep a record of random object keys.',
    });
    const deliveryQueue = new Queue(this, 'DeliveryQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(DELIVERY_RETENTION_DAYS),
      visibilityTimeout: Duration.seconds(REDRIVE_VISIBILITY_FACTOR * functionTimeout(props).toSeconds()),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: delivery.maxReceives },
      removalPolicy,
    });
    const deliveryEventSource = new SqsEventSource(deliveryQueue, {
      batchSize: delivery.batchSize,
      // Lambda requires a batching window for batches over 10.
      maxBatchingWindow: Duration.seconds(1),
      reportBatchItemFailures: true,
      maxConcurrency: delivery.maxConnections,
    });
    this.function.addEventSource(deliveryEventSource);
    deliveryQueue.grantSendMessages(this.function);
    this.deadLetterQueue.grantSendMessages(this.function);
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'StoreLargeQueuedMessages',
        actions: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'],
        resources: [deliveryBucket.arnForObjects(`${STORED_PREFIX}*`)],
      }),
    );
    const bucketLogicalId = Stack.of(this).getLogicalId(deliveryBucket.node.defaultChild as CfnBucket);
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${STORED_PREFIX}*]`,
      reason:
        'Each queued message gets a random object key under queued/: the prefix is the narrowest scope.',
    });
    this.function.addEnvironment('DELIVERY_QUEUE_URL', deliveryQueue.queueUrl);
    this.function.addEnvironment('DELIVERY_BUCKET', deliveryBucket.bucketName);
    this.function.addEnvironment('DEAD_LETTER_QUEUE_URL', this.deadLetterQueue.queueUrl);
    return { deliveryQueue, deliveryBucket, deliveryEventSource };
  }

  /** The HTTP API: `POST /send` (IAM) and the public form routes, the `$default` stage, its access logs. */
  private buildHttpApi(
    props: SmtpSendEndpointProps,
    logRetention: RetentionDays,
    removalPolicy: RemovalPolicy,
  ): { httpApi: HttpApi; accessLogGroup: LogGroup; stage: HttpStage } {
    // No API-level CORS (corsPreflight): API Gateway would answer every OPTIONS itself without calling the
    // function, and would overwrite the CORS headers of the function's responses. Each form has its own
    // allowedOrigins, so the function answers preflights and puts CORS headers on every response, errors included.
    const httpApi = new HttpApi(this, 'HttpApi', {
      description: 'SMTP send endpoint: POST /send (IAM), POST|OPTIONS /forms/{formId} (public)',
      createDefaultStage: false,
    });
    const integration = new HttpLambdaIntegration('Function', this.function);
    httpApi.addRoutes({
      path: '/send',
      methods: [HttpMethod.POST],
      integration,
      authorizer: new HttpIamAuthorizer(),
    });
    if (this.sendRecordsTable) {
      httpApi.addRoutes({
        path: '/messages/{messageId}',
        methods: [HttpMethod.GET],
        integration,
        authorizer: new HttpIamAuthorizer(),
      });
    }
    const formRoutes = httpApi.addRoutes({
      path: '/forms/{formId}',
      methods: [HttpMethod.POST, HttpMethod.OPTIONS],
      integration,
    });
    for (const route of formRoutes) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'Public contact-form route called by anonymous browsers. It can only send to recipients fixed in the ' +
          'configuration (no open relay); origins are allowlisted, with honeypot and optional CAPTCHA, and the ' +
          'route has its own low throttle.',
      });
    }

    const accessLogGroup = new LogGroup(this, 'AccessLogs', { retention: logRetention, removalPolicy });
    const throttle = props.throttle ?? { rateLimit: 10, burstLimit: 20 };
    const stage = new HttpStage(this, 'Stage', {
      httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogGroup),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });
    const formsThrottle = props.formsThrottle ?? { rateLimit: 2, burstLimit: 5 };
    const routeSettings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }> = {};
    for (const method of ['POST', 'OPTIONS']) {
      routeSettings[`${method} /forms/{formId}`] = {
        ThrottlingRateLimit: formsThrottle.rateLimit,
        ThrottlingBurstLimit: formsThrottle.burstLimit,
      };
    }
    const cfnStage = stage.node.defaultChild as CfnStage;
    // The L2 stage has no per-route settings; route settings need the routes to exist first.
    cfnStage.addPropertyOverride('RouteSettings', routeSettings);
    for (const route of formRoutes) stage.node.addDependency(route);
    return { httpApi, accessLogGroup, stage };
  }

  /** The `Send Email` rule on the bus: its events' `detail` is a send request. */
  private buildSendEmailRule(props: SmtpSendEndpointProps): Rule {
    return new Rule(this, 'SendEmailRule', {
      description: 'Events with detail-type "Send Email" carry a send request in detail',
      eventBus: this.eventBus,
      eventPattern: {
        detailType: [SEND_EMAIL_DETAIL_TYPE],
        ...(props.eventSources?.length ? { source: [...props.eventSources] } : {}),
      },
      targets: [new LambdaFunction(this.function)],
    });
  }

  /** The given alarm topic, or one created for `alarmEmails` / `createAlarmTopic`. */
  private buildAlarmTopic(props: SmtpSendEndpointProps): ITopic | undefined {
    if (props.alarmTopic) return props.alarmTopic;
    if (!props.createAlarmTopic && !props.alarmEmails?.length) return undefined;
    const topic = new Topic(this, 'AlarmTopic', {
      displayName: 'SMTP send endpoint alarms',
      enforceSSL: true,
    });
    for (const email of props.alarmEmails ?? []) topic.addSubscription(new EmailSubscription(email));
    return topic;
  }

  /** Errors, throttles, DLQ and parked depth, unknown deliveries; each notifies the alarm topic (ALARM and OK). */
  private buildAlarms(): Alarm[] {
    // Every alarm: one evaluation period, missing data is OK, and fires from the first occurrence (threshold 1,
    // ">= 1"); queue depths say "> 0" instead.
    const makeAlarm = (
      id: string,
      props: Pick<AlarmProps, 'alarmDescription' | 'metric'> & { threshold?: number },
    ) =>
      new Alarm(this, id, {
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        ...props,
        ...(props.threshold !== undefined
          ? { threshold: props.threshold, comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD }
          : { threshold: 1, comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD }),
      });
    const alarms = [
      makeAlarm('ErrorsAlarm', {
        alarmDescription: 'The SMTP send function reported errors (failed invocations)',
        metric: this.function.metricErrors({ period: Duration.minutes(5) }),
      }),
      makeAlarm('ThrottlesAlarm', {
        alarmDescription: 'The SMTP send function was throttled (reserved concurrency or account limit)',
        metric: this.function.metricThrottles({ period: Duration.minutes(5) }),
      }),
      makeAlarm('DeadLetterQueueAlarm', {
        alarmDescription: 'Messages are waiting in the dead-letter queue (asynchronous sends that failed)',
        metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
        }),
        threshold: 0,
      }),
      makeAlarm('ParkedQueueAlarm', {
        alarmDescription:
          'Messages are parked: the dead-letter redrive failed on them 3 times (permanent failures, or a cause that ' +
          'outlasted the retries). Fix the cause or the request, then move them back to the DLQ.',
        metric: this.parkedQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
        threshold: 0,
      }),
      // A send whose outcome is unknown (the connection died after the message data was sent) is deliberately
      // NOT retried (a retry could deliver twice), so it never reaches the DLQ: a human has to check it.
      makeAlarm('DeliveryUnknownAlarm', {
        alarmDescription:
          'A message may or may not have been delivered (outcome "unknown"); it was not retried. Check the ' +
          'function log for the Message-ID before resending.',
        // Single sends, each message of a batch (its own `delivery_unknown` line) and each queued record.
        metric: this.countInLog(
          'DeliveryUnknownFilter',
          'DeliveryUnknown',
          FilterPattern.any(
            FilterPattern.stringValue('$.outcome', '=', 'unknown'),
            FilterPattern.stringValue('$.code', '=', 'delivery_unknown'),
          ),
        ),
      }),
      ...this.buildDeliveryAlarms(makeAlarm),
    ];
    if (this.alarmTopic) {
      const action = new SnsAction(this.alarmTopic);
      for (const alarm of alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
    return alarms;
  }

  /**
   * What queued delivery adds: the delivery queue's oldest message older than 5 min (SMTP down or throttling for
   * longer than the backoff hides), a 5xx answered on each HTTP route (a full outage of the forms is not silent),
   * a batch partly delivered with messages refused for good, and a recipient deferred for more than an hour.
   */
  private buildDeliveryAlarms(
    makeAlarm: (
      id: string,
      props: Pick<AlarmProps, 'alarmDescription' | 'metric'> & { threshold?: number },
    ) => Alarm,
  ): Alarm[] {
    const status5xx = (entryPoint: string) =>
      FilterPattern.all(
        FilterPattern.stringValue('$.entryPoint', '=', entryPoint),
        FilterPattern.numberValue('$.status', '>=', 500),
      );
    return [
      makeAlarm('DeliveryQueueAgeAlarm', {
        alarmDescription:
          'The oldest message on the delivery queue waits for more than 5 minutes: the mail server is down, ' +
          'refusing or throttling. It is retried with backoff and dead-lettered after delivery.maxReceives.',
        metric: this.deliveryQueue.metricApproximateAgeOfOldestMessage({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        threshold: DELIVERY_AGE_ALARM_SECONDS,
      }),
      makeAlarm('SendRoute5xxAlarm', {
        alarmDescription:
          'POST /send answered with a 5xx (configuration error, SMTP unavailable, internal error)',
        metric: this.countInLog('SendRoute5xxFilter', 'SendRoute5xx', status5xx('http_send')),
      }),
      makeAlarm('FormRoute5xxAlarm', {
        alarmDescription:
          'A form post was answered with a 5xx (configuration error, SMTP unavailable, internal error)',
        metric: this.countInLog('FormRoute5xxFilter', 'FormRoute5xx', status5xx('http_form')),
      }),
      makeAlarm('BatchPartialFailureAlarm', {
        alarmDescription:
          'An EventBridge or direct-invoke batch was partly delivered and some messages were refused for good; ' +
          'the log line (code batch_partial_failure) names each one.',
        metric: this.countInLog(
          'BatchPartialFailureFilter',
          'BatchPartialFailure',
          FilterPattern.stringValue('$.code', '=', 'batch_partial_failure'),
        ),
      }),
      makeAlarm('DeferredRecipientAlarm', {
        alarmDescription:
          'A recipient refused with 4xx is still not delivered an hour after its message was first queued.',
        metric: this.countInLog(
          'DeferredRecipientFilter',
          'DeferredOverAnHour',
          FilterPattern.all(
            FilterPattern.any(
              FilterPattern.stringValue('$.reason', '=', 'deferred'),
              FilterPattern.stringValue('$.code', '=', 'recipient_deferred'),
            ),
            FilterPattern.numberValue('$.queuedForSeconds', '>', DEFERRED_ALARM_SECONDS),
          ),
        ),
      }),
    ];
  }

  /** A count of the function's log lines that match `pattern` (the summary lines), per 5 minutes. */
  private countInLog(id: string, metricName: string, pattern: IFilterPattern): IMetric {
    return new MetricFilter(this, id, {
      logGroup: this.logGroup,
      filterPattern: pattern,
      // one namespace per stack: two copies of the endpoint in an account must not share the count
      metricNamespace: `SmtpSendEndpoint/${Stack.of(this).stackName}`,
      metricName,
      metricValue: '1',
    }).metric({ period: Duration.minutes(5), statistic: 'Sum' });
  }

  /** UUID of the redrive event source mapping (`aws lambda update-event-source-mapping --uuid`). */
  get redriveMappingId(): string {
    return this.redriveEventSource.eventSourceMappingId;
  }

  /** The `execute-api` ARN of `POST /send` on the `$default` stage, for callers' IAM policies. */
  get sendInvokeArn(): string {
    return this.httpApi.arnForExecuteApi('POST', '/send', '$default');
  }

  /** Allow a principal (a role of another service) to call `POST /send` with SigV4. */
  grantSend(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.sendInvokeArn],
    });
  }

  /**
   * Allow a principal to read message status (`GET /messages/{messageId}`) with SigV4. Throws with
   * `idempotency: false` (there is no status route).
   */
  grantStatus(grantee: IGrantable): Grant {
    if (!this.sendRecordsTable)
      throw new Error('SmtpSendEndpoint: grantStatus needs idempotency (the status route)');
    return Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.httpApi.arnForExecuteApi('GET', '/messages/*', '$default')],
    });
  }

  /** Allow a principal to invoke the function directly (`lambda:InvokeFunction`). */
  grantInvoke(grantee: IGrantable): Grant {
    return this.function.grantInvoke(grantee);
  }

  /** The stage URL, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/`. */
  get url(): string {
    return this.stage.url;
  }

  /**
   * Turn any event into an email: a rule on the bus whose target is the function, with an input transformer
   * that replaces the event by a "Send Email" event whose `detail` is `message` (a send request;
   * `EventField.fromPath(...)` inserts values of the matched event). The envelope keeps the event's id, source,
   * time, account and region, so the function takes its EventBridge path: failures are thrown, retried twice
   * and end in the dead-letter queue (a bare send request would take the direct-invoke path, which returns
   * errors instead of throwing them).
   */
  addEventRule(id: string, options: EventRuleOptions): Rule {
    const envelope = {
      version: '0',
      id: EventField.eventId,
      'detail-type': SEND_EMAIL_DETAIL_TYPE,
      source: EventField.source,
      account: EventField.account,
      time: EventField.time,
      region: EventField.region,
      resources: [],
      detail: options.message,
    };
    return new Rule(this, id, {
      eventBus: options.eventBus ?? this.eventBus,
      eventPattern: options.eventPattern,
      ...(options.description ? { description: options.description } : {}),
      targets: [new LambdaFunction(this.function, { event: RuleTargetInput.fromObject(envelope) })],
    });
  }

  private resolveSmtpSecret(
    source: SmtpSecretSource,
    removalPolicy: RemovalPolicy,
    encryptionKey: IKey | undefined,
  ): { secret: ISecret; secretId: string } {
    if ('secret' in source) {
      // A complete ARN when known; an imported-by-name secret is addressed by its name (its partial ARN is not
      // a valid SecretId when another secret's name shares the prefix).
      const { secret } = source;
      return { secret, secretId: secret.secretFullArn ?? secret.secretName };
    }
    if ('secretArn' in source) {
      const secret = Secret.fromSecretCompleteArn(this, 'SmtpSecret', source.secretArn);
      return { secret, secretId: source.secretArn };
    }
    if (!('create' in source)) {
      return {
        secret: Secret.fromSecretNameV2(this, 'SmtpSecret', source.secretName),
        secretId: source.secretName,
      };
    }
    const secret = new Secret(this, 'SmtpSecret', {
      ...(source.secretName ? { secretName: source.secretName } : {}),
      description: 'SMTP credentials of the send endpoint: fill host, username, password and from',
      ...(encryptionKey ? { encryptionKey } : {}),
      generateSecretString: {
        secretStringTemplate: JSON.stringify({
          host: '',
          port: 587,
          security: 'starttls',
          username: '',
          from: '',
        }),
        generateStringKey: 'password',
        excludePunctuation: true,
      },
      removalPolicy,
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'SMTP credentials are issued by the mail provider (SES SMTP user, Gmail app password, relay account); ' +
        'rotating them needs the provider, not a Secrets Manager rotation Lambda. Rotate at the provider, then ' +
        'put-secret-value; warm functions pick it up within SECRET_TTL_SECONDS.',
    });
    return { secret, secretId: secret.secretArn };
  }
}

/** Secret ids of the forms' CAPTCHA providers, deduplicated. */
export function captchaSecretIds(config: EndpointConfigInput): string[] {
  const ids = new Set<string>();
  for (const form of Object.values(config.forms ?? {})) {
    if (form.captcha?.secretId) ids.add(form.captcha.secretId.trim());
  }
  return [...ids];
}

/** The function's timeout (the DLQ's visibility timeout is derived from it). */
function functionTimeout(props: SmtpSendEndpointProps): Duration {
  return props.timeout ?? Duration.seconds(30);
}

/** The ARN to put in a policy: the complete ARN when known, else the name-based ARN plus the random suffix. */
function secretArnForPolicy(secret: ISecret): string {
  return secret.secretFullArn ?? `${secret.secretArn}-??????`;
}

/** Bytes Lambda counts against its 4 KB environment limit. */
/**
 * Bytes of an environment as Lambda counts them (keys + values). A value CloudFormation resolves later (a
 * reference, such as the send records table's name) counts as {@link RESOLVED_VALUE_BYTES}.
 */
export function envSize(env: Record<string, unknown>): number {
  const size = (v: unknown) =>
    typeof v === 'string' && !Token.isUnresolved(v) ? Buffer.byteLength(v) : RESOLVED_VALUE_BYTES;
  return Object.entries(env).reduce((n, [k, val]) => n + Buffer.byteLength(k) + size(val), 0);
}

/** The longest a resolved reference in the environment can be: 255, DynamoDB's longest table name. */
export const RESOLVED_VALUE_BYTES = 255;

/**
 * The handler bundled at synth time by scripts/build.ts's `esbuildOptions` (its one source of truth), through
 * CDK's local bundling: ESM with the `require` banner, minified, source maps, the AWS SDK bundled (the version
 * pinned in package-lock.json is the one tested), and code splitting — the lazily imported modules are chunk
 * files next to `index.mjs`, which NodejsFunction cannot produce (it passes esbuild one `--outfile`). A
 * configuration delivered as a file is copied next to the bundle. Never Docker: a failed build fails the synth.
 */
function bundledCode(
  entry: string,
  opts: { projectRoot: string; target: string; image: DockerImage; configFile: string | undefined },
): Code {
  return Code.fromAsset(opts.projectRoot, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      image: opts.image,
      local: {
        tryBundle(outputDir: string): boolean {
          const result = buildSync({
            ...esbuildOptions({ entry, outdir: outputDir, externalAwsSdk: false, target: opts.target }),
            metafile: false,
            logLevel: 'warning',
          });
          if (result.errors.length > 0) throw new Error(`esbuild: ${result.errors[0]!.text}`);
          if (opts.configFile) copyFileSync(opts.configFile, join(outputDir, CONFIG_FILE_NAME));
          return true;
        },
      },
    },
  });
}

/**
 * Write the configuration to a content-addressed file inside the cloud assembly directory (cleaned with it) for
 * the bundling step (bundledCode) to copy next to the bundle. The content hash also makes the asset hash change with it.
 */
function stageConfigFile(scope: Construct, json: string): string {
  const outdir = Stage.of(scope)?.outdir;
  if (!outdir) throw new Error('SmtpSendEndpoint: no cloud assembly directory to stage the config file in');
  const hash = createHash('sha256').update(json).digest('hex').slice(0, 16);
  const dir = join(outdir, 'smtp-send-endpoint-config', hash);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, CONFIG_FILE_NAME);
  writeFileSync(file, json);
  return file;
}

/**
 * Exactly what functions/store/send-records.ts calls: Powertools' claim (PutItem, GetItem, UpdateItem, DeleteItem),
 * our marker and status writes (UpdateItem, PutItem), and the status look-up (Query on the index only).
 */
function sendRecordsStatements(table: Table): PolicyStatement[] {
  return [
    new PolicyStatement({
      sid: 'SendRecords',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      resources: [table.tableArn],
    }),
    new PolicyStatement({
      sid: 'MessageStatusByMessageId',
      actions: ['dynamodb:Query'],
      resources: [`${table.tableArn}/index/${SEND_RECORDS_TABLE.messageIdIndex}`],
    }),
  ];
}
