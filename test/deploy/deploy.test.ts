/**
 * Deploys the stack for real to an emulated AWS and calls it: moto_server on a free port, `cdk bootstrap`, `cdk
 * deploy --method=direct` (moto's change sets report success but create no outputs), then checks through the SDK
 * what moto really created; downloads the deployed zip from the emulated asset bucket and runs its handler with
 * the deployed environment in a child Node process — on Node 24 (Lambda's nodejs24.x) and on the suite's Node —
 * with the SMTP secret read from moto's Secrets Manager and the test SMTP server as the mail server: /send, a form
 * post, an EventBridge event, a direct invoke, a refused recipient. Then `cdk destroy`.
 *
 * moto skips some resource types without a word: API Gateway v2, EventInvokeConfig, CloudWatch alarms, metric
 * filters and SQS queue policies. The test asserts that the template has them and moto did not create them; what
 * they say is covered by the template assertions in test/infra/endpoint.test.ts.
 *
 * docs/deploy.md is checked against the same deployment with the real AWS CLI v2 (Debian's): the SMTP secret is
 * created and later rotated by the doc's own blocks, and every ```sh block of the doc is either run here or listed
 * with the reason moto cannot run it (DOC_BLOCKS).
 *
 * Adding a resource to the construct: add one `it` under "what moto created" that reads it back through its SDK
 * (a new API route: add it to the resource-policy check).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeStacksCommand,
  GetTemplateCommand,
  ListStackResourcesCommand,
  type StackResourceSummary,
} from '@aws-sdk/client-cloudformation';
import { ListRulesCommand, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import { GetRolePolicyCommand, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import {
  type FunctionConfiguration,
  GetFunctionCommand,
  GetPolicyCommand,
  ListEventSourceMappingsCommand,
} from '@aws-sdk/client-lambda';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { GetQueueAttributesCommand, ListQueuesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { type ParsedMail, simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../infra/app.ts';
import { eventBridgeEvent, formEvent, sendEvent } from '../handlers/events.ts';
import { ACCOUNT, type MotoServer, REGION, startMotoServer } from '../support/moto-server.ts';
import {
  startSmtpServer,
  TEST_CA,
  TEST_PASSWORD,
  TEST_USER,
  type TestSmtpServer,
} from '../support/smtp-server.ts';
import { requireTool } from '../support/tools.ts';
import {
  type Clients,
  cdk,
  clients,
  fetchDeployedZip,
  policyDocument,
  ROOT,
  startZipRuntime,
  type ZipRuntime,
} from './deployment.ts';
import { awsCliShim, runShell, type ShellResult, shellBlocks } from './doc-commands.ts';

const STACK = 'SmtpSendEndpoint';
const SECRET_NAME = 'smtp-send-endpoint/smtp';
/** Resource types moto's CloudFormation accepts but does not create (checked below, so a moto upgrade shows). */
const NOT_EMULATED = [
  'AWS::ApiGatewayV2::Api',
  'AWS::ApiGatewayV2::Stage',
  'AWS::ApiGatewayV2::Integration',
  'AWS::ApiGatewayV2::Route',
  'AWS::Lambda::EventInvokeConfig',
  'AWS::CloudWatch::Alarm',
  'AWS::Logs::MetricFilter',
  'AWS::SQS::QueuePolicy',
];

type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

const DOC = join(ROOT, 'docs', 'deploy.md');
/**
 * Every ```sh block of docs/deploy.md, found by a snippet: where this file runs it, or why moto cannot.
 * `skipLines` are left out of a block that is run (each with its reason in `run`).
 */
const DOC_BLOCKS: { snippet: string; run?: string; skipLines?: RegExp; notRun?: string }[] = [
  { snippet: 'aws secretsmanager create-secret', run: 'before the deploy: it creates the SMTP secret' },
  {
    snippet: 'npx cdk bootstrap',
    notRun:
      'the test runs `cdk bootstrap aws://ACCOUNT/REGION` and `cdk deploy --require-approval never --method=direct`: ' +
      'no terminal to approve IAM changes, moto makes no outputs through a change set and cannot update a stack ' +
      '(the every-option synth is checked by cfn-lint and test/infra)',
  },
  {
    snippet: 'out() {',
    run: 'after the deploy, with only AWS_DEFAULT_REGION set (no AWS_REGION, no profile)',
  },
  {
    snippet: '--aws-sigv4',
    notRun:
      'curl calls the HTTP API, and moto does not emulate API Gateway v2; the test runs the handler itself',
  },
  {
    snippet: 'aws events put-events',
    notRun:
      "moto answers 500 Internal Server Error: it tries to run the rule's Lambda target, which needs Docker",
  },
  {
    snippet: 'aws lambda invoke',
    notRun:
      'moto runs Lambda code only in Docker; the test runs the deployed zip with the deployed environment',
  },
  { snippet: '--format short', run: 'after the deploy', skipLines: /--follow/ },
  { snippet: 'fromjson', run: 'on the empty DLQ, then with one invocation record in it' },
  { snippet: 'get-event-source-mapping', run: 'enables, reads the state, disables', skipLines: /--follow/ },
  {
    snippet: 'start-message-move-task',
    notRun: "moto has no message move tasks, and Debian's AWS CLI 2.9.19 lacks the commands (asserted below)",
  },
  { snippet: 'put-secret-value', run: 'after the deploy: it rotates the secret to the test SMTP server' },
  { snippet: 'npx cdk destroy', notRun: 'the test runs `cdk destroy --force` (no terminal to confirm)' },
  { snippet: 'aws logs delete-log-group', run: 'after the destroy, with the variables of section 5' },
];

let moto: MotoServer;
let aws: Clients;
let mail: TestSmtpServer;
let work: string;
let template: Template;
let resources: StackResourceSummary[];
let outputs: Record<string, string>;
let fn: FunctionConfiguration;
let zipFiles: string[];
let outputDescriptions: Record<string, string>;
const runtimes: ZipRuntime[] = [];
let docDir: string;
let shimDir: string;

/** The doc's one sh block containing `snippet`, without the lines DOC_BLOCKS leaves out. */
function docBlock(snippet: string): string {
  const found = shellBlocks(DOC).filter((b) => b.code.includes(snippet));
  if (found.length !== 1) throw new Error(`docs/deploy.md: ${found.length} sh blocks contain ${snippet}`);
  const skip = DOC_BLOCKS.find((b) => b.snippet === snippet)?.skipLines;
  return found[0]!.code
    .split('\n')
    .filter((line) => !skip?.test(line))
    .join('\n');
}

/** Runs a doc block in the doc's working directory (after the section 5 variables, once they exist). */
async function runDoc(snippet: string, env: Record<string, string> = {}): Promise<ShellResult> {
  const prelude = existsSync(join(docDir, 'vars.sh')) ? '. ./vars.sh\n' : '';
  const r = await runShell(prelude + docBlock(snippet), { cwd: docDir, shimDir, moto, env });
  if (r.code !== 0)
    throw new Error(`docs/deploy.md block "${snippet}": exit ${r.code}\n${r.stderr}${r.stdout}`);
  return r;
}

/** The secret's JSON for the test SMTP server, written where the doc's blocks read `smtp.json`. */
function writeSmtpJson(): void {
  writeFileSync(
    join(docDir, 'smtp.json'),
    JSON.stringify({
      host: '127.0.0.1',
      port: mail.port,
      username: TEST_USER,
      password: TEST_PASSWORD,
      from: 'noreply@example.com',
      ca: TEST_CA,
    }),
  );
}

const logicalId = (type: string, prefix: string) =>
  Object.entries(template.Resources).find(([id, r]) => r.Type === type && id.startsWith(prefix))?.[0];
const physicalId = (type: string, prefix: string) =>
  resources.find((r) => r.LogicalResourceId === logicalId(type, prefix))?.PhysicalResourceId;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'deploy-test-'));
  [moto, mail] = await Promise.all([startMotoServer(), startSmtpServer()]);
  aws = clients(moto);
  docDir = join(work, 'doc');
  mkdirSync(docDir);
  shimDir = awsCliShim(join(work, 'bin'), moto);
  await runDoc('aws secretsmanager create-secret'); // the doc's example values: rotated below
  const out = join(work, 'cdk.out');
  await cdk(moto, ['bootstrap', `aws://${ACCOUNT}/${REGION}`, '--output', out], work);
  await cdk(moto, ['deploy', '--require-approval', 'never', '--method=direct', '--output', out], work);

  const stack = await aws.cloudFormation.send(new DescribeStacksCommand({ StackName: STACK }));
  outputs = Object.fromEntries((stack.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  outputDescriptions = Object.fromEntries(
    (stack.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.Description ?? '']),
  );
  writeSmtpJson();
  await runDoc('put-secret-value'); // section 9's rotation: from now on the secret names the test SMTP server
  const body = (await aws.cloudFormation.send(new GetTemplateCommand({ StackName: STACK }))).TemplateBody!;
  template = JSON.parse(body) as Template;
  resources =
    (await aws.cloudFormation.send(new ListStackResourcesCommand({ StackName: STACK })))
      .StackResourceSummaries ?? [];
  fn = (await aws.lambda.send(new GetFunctionCommand({ FunctionName: outputs.FunctionName }))).Configuration!;
  const code = template.Resources[logicalId('AWS::Lambda::Function', 'EndpointFunction')!]!.Properties
    .Code as {
    S3Bucket: unknown;
    S3Key: unknown;
  };
  zipFiles = await fetchDeployedZip(aws, fn.FunctionName!, code, join(work, 'task'));
}, 400_000);

afterAll(async () => {
  for (const r of runtimes) await r.close();
  await Promise.all([moto?.close(), mail?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('cdk deploy to moto: what moto created', () => {
  it('the stack with its outputs', () => {
    expect(Object.keys(outputs).sort()).toEqual(
      expect.arrayContaining([
        'FunctionName',
        'FunctionLogGroup',
        'DeadLetterQueueUrl',
        'RedriveMappingId',
        'SmtpSecretId',
      ]),
    );
    expect(outputs.SmtpSecretId).toBe(SECRET_NAME);
    // the function logs to its own group (LoggingConfig), not /aws/lambda/<name>: the outputs say so
    expect(outputDescriptions.FunctionName).not.toMatch(/aws logs tail \/aws\/lambda/);
    expect(outputDescriptions.FunctionName).toContain('FunctionLogGroup');
    expect(outputDescriptions.FunctionLogGroup).toMatch(/aws logs tail/);
  });

  it('the function: nodejs24.x, index.handler, 256 MB, 30 s, the environment the app computed', () => {
    expect(fn).toMatchObject({
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      MemorySize: 256,
      Timeout: 30,
    });
    const vars = fn.Environment!.Variables!;
    expect(vars).toMatchObject({
      SMTP_SECRET_ID: SECRET_NAME,
      SECRET_TTL_SECONDS: '300',
      SMTP_REUSE: 'true',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
    });
    expect(JSON.parse(vars.ENDPOINT_CONFIG!)).toEqual(JSON.parse(JSON.stringify(loadConfig())));
    expect(zipFiles).toEqual(expect.arrayContaining(['index.mjs']));
    // code-split (scripts/build.ts SPLIT_OUTPUT): the lazily imported modules ship as chunks next to the entry
    expect(zipFiles.filter((f) => /^chunk-[A-Z0-9]+\.mjs$/.test(f)).length).toBeGreaterThanOrEqual(2);
  });

  it("the role's inline policy reads exactly the SMTP secret and writes only its own log group", async () => {
    const role = fn.Role!.split('/').pop()!;
    const names = (await aws.iam.send(new ListRolePoliciesCommand({ RoleName: role }))).PolicyNames ?? [];
    expect(names).toContain('SmtpSendEndpoint');
    const doc = policyDocument(
      (await aws.iam.send(new GetRolePolicyCommand({ RoleName: role, PolicyName: 'SmtpSendEndpoint' })))
        .PolicyDocument!,
    );
    const bySid = Object.fromEntries(doc.Statement.map((s) => [s.Sid, s]));
    expect(bySid.ReadSmtpAndCaptchaSecrets).toMatchObject({
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${SECRET_NAME}-??????`,
    });
    expect(bySid.WriteOwnLogs).toMatchObject({
      Resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${outputs.FunctionLogGroup}`,
    });
    // the other inline policies (CDK's default policy): the DLQ, never the parked queue
    let others = '';
    for (const name of names.filter((n) => n !== 'SmtpSendEndpoint')) {
      const { PolicyDocument } = await aws.iam.send(
        new GetRolePolicyCommand({ RoleName: role, PolicyName: name }),
      );
      others += JSON.stringify(policyDocument(PolicyDocument!));
    }
    expect(others).toContain(outputs.DeadLetterQueueArn);
    expect(others).not.toContain(outputs.ParkedQueueArn);
  });

  it('the redrive mapping: DLQ → the function, disabled, batches of 5, at most 2, ReportBatchItemFailures', async () => {
    const { EventSourceMappings = [] } = await aws.lambda.send(
      new ListEventSourceMappingsCommand({ FunctionName: fn.FunctionName }),
    );
    const redrive = EventSourceMappings.filter((m) => m.EventSourceArn === outputs.DeadLetterQueueArn);
    expect(redrive).toHaveLength(1);
    expect(redrive[0]).toMatchObject({
      UUID: outputs.RedriveMappingId,
      EventSourceArn: outputs.DeadLetterQueueArn,
      FunctionArn: fn.FunctionArn,
      State: 'Disabled',
      BatchSize: 5,
      ScalingConfig: { MaximumConcurrency: 2 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('the queues: DLQ 14 days, SSE, visibility 180 s, redrive to the parked queue after 3; parked 14 days', async () => {
    const attrs = async (url: string) =>
      (await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] })))
        .Attributes!;
    const urls = (await aws.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [];
    const byArn = async (arn: string) => {
      for (const url of urls) if ((await attrs(url)).QueueArn === arn) return attrs(url);
      throw new Error(`no queue ${arn} in ${urls.join(', ')}`);
    };
    const dlq = await byArn(outputs.DeadLetterQueueArn!);
    expect(dlq).toMatchObject({
      MessageRetentionPeriod: '1209600',
      VisibilityTimeout: '180',
      SqsManagedSseEnabled: 'true',
    });
    expect(JSON.parse(dlq.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: outputs.ParkedQueueArn,
      maxReceiveCount: 3,
    });
    const parked = await byArn(outputs.ParkedQueueArn!);
    expect(parked).toMatchObject({ MessageRetentionPeriod: '1209600', SqsManagedSseEnabled: 'true' });
    expect(parked.RedrivePolicy).toBeUndefined();
  });

  it('the "Send Email" rule on the default bus targets the function', async () => {
    const { Rules = [] } = await aws.events.send(new ListRulesCommand({ EventBusName: 'default' }));
    const rule = Rules.find((r) => r.Name === physicalId('AWS::Events::Rule', 'EndpointSendEmailRule'));
    expect(rule).toBeDefined();
    expect(JSON.parse(rule!.EventPattern!)).toEqual({ 'detail-type': ['Send Email'] });
    expect(rule!.State).toBe('ENABLED');
    const { Targets = [] } = await aws.events.send(new ListTargetsByRuleCommand({ Rule: rule!.Name! }));
    expect(Targets.map((t) => t.Arn)).toEqual([fn.FunctionArn]);
  });

  it("the function's resource policy: EventBridge from that rule, API Gateway for POST /send, POST|OPTIONS /forms, GET /messages", async () => {
    const policy = JSON.parse(
      (await aws.lambda.send(new GetPolicyCommand({ FunctionName: fn.FunctionName }))).Policy!,
    );
    const grants = (
      policy.Statement as { Principal: { Service: string }; Condition: { ArnLike: Record<string, string> } }[]
    ).map((s) => [s.Principal.Service, s.Condition.ArnLike['AWS:SourceArn']]);
    const ruleArn = `arn:aws:events:${REGION}:${ACCOUNT}:rule/${physicalId('AWS::Events::Rule', 'EndpointSendEmailRule')}`;
    expect(grants).toContainEqual(['events.amazonaws.com', ruleArn]);
    const api = grants
      .filter(([service]) => service === 'apigateway.amazonaws.com')
      .map(([, arn]) => arn!.replace(/^.*:[^/]*\//, ''));
    expect(api.sort()).toEqual([
      '*/*/forms/{formId}',
      '*/*/forms/{formId}',
      '*/*/messages/{messageId}',
      '*/*/send',
    ]);
  });

  it('moto does not create API Gateway v2, EventInvokeConfig, alarms, metric filters, queue policies (template-tested)', () => {
    const created = new Set(resources.filter((r) => r.PhysicalResourceId).map((r) => r.LogicalResourceId));
    for (const type of NOT_EMULATED) {
      const ids = Object.entries(template.Resources)
        .filter(([, r]) => r.Type === type)
        .map(([id]) => id);
      expect(ids.length, type).toBeGreaterThan(0);
      expect(
        ids.filter((id) => created.has(id)),
        type,
      ).toEqual([]);
    }
  });
});

/** The environment Lambda gives the function: its deployed variables plus the runtime's own. */
function lambdaEnvironment(taskRoot: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    ...fn.Environment!.Variables!,
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    // the emulation: every AWS call of the function goes to moto
    AWS_ENDPOINT_URL: moto.url,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.Runtime}`,
    AWS_LAMBDA_FUNCTION_NAME: fn.FunctionName!,
    AWS_LAMBDA_FUNCTION_VERSION: fn.Version ?? '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.MemorySize),
    AWS_LAMBDA_LOG_GROUP_NAME: outputs.FunctionLogGroup!,
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/12/01/[$LATEST]0123456789abcdef0123456789abcdef',
    LAMBDA_TASK_ROOT: taskRoot,
    _HANDLER: fn.Handler!,
  };
}

/** The one arrival that matches (waits up to 10 s); fails if none or several have that Message-ID. */
async function arrival(match: (m: ParsedMail) => boolean) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const parsed = await Promise.all(
      mail.messages.map(async (m) => ({ envelope: m.envelope, parsed: await simpleParser(m.raw) })),
    );
    const found = parsed.find((m) => match(m.parsed));
    if (found) {
      expect(parsed.filter((m) => m.parsed.messageId === found.parsed.messageId)).toHaveLength(1);
      return found;
    }
    if (Date.now() > deadline) throw new Error('no such message arrived');
    await new Promise((r) => setTimeout(r, 25));
  }
}
const withId = (id: string) => (m: ParsedMail) => m.messageId === id;

const arrivalsTo = (address: string) => mail.messages.filter((m) => m.envelope.to.includes(address)).length;

describe.each([
  ["Node 24 (Lambda's nodejs24.x, from the npm registry)", () => requireTool('node24'), /^v24\./],
  ["the suite's Node", () => process.execPath, new RegExp(`^${process.version.replaceAll('.', '\\.')}$`)],
])('the deployed zip on %s, with the deployed environment', (_name, binary, version) => {
  let rt: ZipRuntime;
  const tag = Math.random().toString(36).slice(2, 8);

  beforeAll(async () => {
    const root = join(work, 'task');
    rt = await startZipRuntime(binary(), root, lambdaEnvironment(root), fn.FunctionArn!);
    runtimes.push(rt);
  }, 60_000);

  it('runs on that Node version', () => {
    expect(rt.node).toMatch(version);
  });

  it('POST /send (IAM): 200, delivered with the secret from moto', async () => {
    const { result, error } = await rt.invoke(
      sendEvent({ to: 'alice@example.com', subject: `deploy /send ${tag}`, text: 'via the deployed zip' }),
    );
    expect(error).toBeUndefined();
    expect(result.statusCode).toBe(200);
    const answer = JSON.parse(result.body);
    expect(answer).toMatchObject({ accepted: ['alice@example.com'], rejected: [] });
    const got = await arrival(withId(answer.messageId));
    expect(got.envelope).toEqual({ from: 'noreply@example.com', to: ['alice@example.com'] });
    expect(got.parsed.subject).toBe(`deploy /send ${tag}`);
  });

  it('a form post (the configured contact form): 200 JSON, delivered to the form recipient', async () => {
    const before = arrivalsTo('team@example.com');
    const body = new URLSearchParams({
      name: `Ann ${tag}`,
      email: 'ann@example.com',
      message: 'Hello',
    }).toString();
    const { result, error } = await rt.invoke(
      formEvent('contact', {
        headers: {
          origin: 'http://127.0.0.1:3000',
          accept: 'application/json',
          'content-type': 'application/x-www-form-urlencoded',
        },
        body,
      }),
    );
    expect(error).toBeUndefined();
    expect(result.statusCode).toBe(200);
    expect(result.headers['access-control-allow-origin']).toBe('http://127.0.0.1:3000');
    const got = await arrival((m) => m.subject === `Contact form: Ann ${tag}`);
    // sync-then-queue (the forms' default) delivered it in the request: status sent, with its Message-ID.
    expect(JSON.parse(result.body)).toEqual({ ok: true, status: 'sent', messageId: got.parsed.messageId });
    expect(got.envelope.to).toEqual(['team@example.com']);
    expect(got.parsed.subject).toBe(`Contact form: Ann ${tag}`);
    expect(got.parsed.replyTo?.text).toContain('ann@example.com');
    expect(arrivalsTo('team@example.com')).toBe(before + 1);
  });

  it('an EventBridge "Send Email" event: delivered', async () => {
    const subject = `deploy event ${tag}`;
    const { result, error } = await rt.invoke(
      eventBridgeEvent({ to: 'ops@example.com', subject, text: 'event' }),
    );
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ ok: true, accepted: ['ops@example.com'] });
    expect((await arrival(withId(result.messageId))).parsed.subject).toBe(subject);
  });

  it('a direct invoke: { ok: true, messageId }, delivered', async () => {
    const subject = `deploy direct ${tag}`;
    const { result, error } = await rt.invoke({ to: 'bob@example.org', subject, text: 'direct' });
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ ok: true, accepted: ['bob@example.org'] });
    expect((await arrival(withId(result.messageId))).parsed.subject).toBe(subject);
  });

  it('a refused recipient: /send answers 502 smtp_rejected, a direct invoke throws smtp_rejected; nothing arrives', async () => {
    const to = `reject-${tag}@example.com`;
    const http = await rt.invoke(sendEvent({ to, subject: 'refused', text: 'x' }));
    expect(http.result.statusCode).toBe(502);
    expect(http.result.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(http.result.body)).toMatchObject({
      code: 'smtp_rejected',
      smtp: { code: 550, phase: 'rcpt' },
    });
    const direct = await rt.invoke({ to, subject: 'refused', text: 'x' });
    expect(direct.error?.errorType).toBe('smtp_rejected');
    expect(JSON.parse(direct.error!.errorMessage)).toMatchObject({ code: 'smtp_rejected', transient: false });
    expect(arrivalsTo(to)).toBe(0);
  });

  it('its logs never contain the SMTP password', () => {
    expect(rt.output()).not.toContain(TEST_PASSWORD);
    expect(rt.output()).toContain('"entryPoint"');
  });
});

// each AWS CLI v2 call starts a Python interpreter: about a second, several under load
describe('docs/deploy.md against the deployed stack (AWS CLI v2)', { timeout: 180_000 }, () => {
  it('every sh block is run here or says why moto cannot run it', () => {
    const blocks = shellBlocks(DOC);
    for (const b of blocks) {
      const entries = DOC_BLOCKS.filter((d) => b.code.includes(d.snippet));
      expect(
        entries.map((e) => e.snippet),
        `block under "${b.heading}":\n${b.code}`,
      ).toHaveLength(1);
      expect(Boolean(entries[0]!.run) !== Boolean(entries[0]!.notRun)).toBe(true);
    }
    for (const d of DOC_BLOCKS)
      expect(
        blocks.filter((b) => b.code.includes(d.snippet)),
        d.snippet,
      ).toHaveLength(1);
  });

  it("section 5's variables: the outputs, and the stack's region with only AWS_DEFAULT_REGION set", async () => {
    const names = [
      'API',
      'FN',
      'DLQ',
      'REGION',
      'DLQ_ARN',
      'MAPPING',
      'PARKED',
      'PARKED_ARN',
      'LOGS',
      'ACCESS_LOGS',
      'RECORDS',
      'DELIVERY_QUEUE',
      'DELIVERY_BUCKET',
    ];
    const r = await runShell(`${docBlock('out() {')}\ndeclare -p ${names.join(' ')} > vars.sh`, {
      cwd: docDir,
      shimDir,
      moto,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const vars = (
      await runShell(`. ./vars.sh; printf '%s\\n' ${names.map((n) => `"$${n}"`).join(' ')}`, {
        cwd: docDir,
        shimDir,
        moto,
      })
    ).stdout
      .trim()
      .split('\n');
    expect(Object.fromEntries(names.map((n, i) => [n, vars[i]]))).toEqual({
      API: outputs.ApiUrl,
      FN: outputs.FunctionName,
      DLQ: outputs.DeadLetterQueueUrl,
      REGION,
      DLQ_ARN: outputs.DeadLetterQueueArn,
      MAPPING: outputs.RedriveMappingId,
      PARKED: outputs.ParkedQueueUrl,
      PARKED_ARN: outputs.ParkedQueueArn,
      LOGS: outputs.FunctionLogGroup,
      ACCESS_LOGS: outputs.AccessLogGroup,
      RECORDS: outputs.SendRecordsTableName,
      DELIVERY_QUEUE: outputs.DeliveryQueueUrl,
      DELIVERY_BUCKET: outputs.DeliveryBucketName,
    });
    // what the doc used before: empty in this environment, so curl would have signed for no region
    const oldLine = 'echo "[$' + '{AWS_REGION:-$(aws configure get region)}]"';
    const old = await runShell(oldLine, {
      cwd: docDir,
      shimDir,
      moto,
    });
    expect(old.stdout.trim()).toBe('[]');
  });

  it("section 7's log reads run against the function's and the API's log groups", async () => {
    const r = await runDoc('--format short');
    expect(r.stderr).toBe('');
  });

  it('reading the DLQ: no output and exit 0 when empty; condition, error and event of a record', async () => {
    const empty = await runDoc('fromjson');
    expect(JSON.parse(empty.stdout)).toMatchObject({ Attributes: { ApproximateNumberOfMessages: '0' } });
    const record = {
      requestContext: { requestId: 'r-1', condition: 'RetriesExhausted', approximateInvokeCount: 3 },
      requestPayload: { to: 'alice@example.com', subject: 'Nightly report', text: 'All green.' },
      responsePayload: { errorType: 'Error', errorMessage: '[smtp_unavailable] connect ECONNREFUSED' },
    };
    await aws.sqs.send(
      new SendMessageCommand({ QueueUrl: outputs.DeadLetterQueueUrl, MessageBody: JSON.stringify(record) }),
    );
    const one = await runDoc('fromjson');
    const printed = one.stdout.slice(one.stdout.indexOf('}\n{') + 2);
    expect(JSON.parse(printed)).toEqual({
      condition: 'RetriesExhausted',
      error: '[smtp_unavailable] connect ECONNREFUSED',
      event: record.requestPayload,
    });
  });

  it('the redrive: enabled, its state read, disabled again', async () => {
    const r = await runDoc('get-event-source-mapping');
    expect(r.stdout).toContain('"Enabled"');
    const { EventSourceMappings = [] } = await aws.lambda.send(
      new ListEventSourceMappingsCommand({ FunctionName: fn.FunctionName }),
    );
    expect(EventSourceMappings.find((m) => m.UUID === outputs.RedriveMappingId)?.State).toBe('Disabled');
  });

  it("the message-move commands: absent from Debian's AWS CLI 2.9.19, as the prerequisites say", async () => {
    const version = (await runShell('aws --version', { cwd: docDir, shimDir, moto })).stdout;
    expect(version).toMatch(/^aws-cli\/2\./);
    expect(readFileSync(DOC, 'utf8')).toMatch(
      /Debian 12's package \(2\.9\.19\) does not have those\s+commands/,
    );
    const r = await runShell(`aws sqs start-message-move-task --source-arn ${outputs.ParkedQueueArn}`, {
      cwd: docDir,
      shimDir,
      moto,
    });
    if (version.startsWith('aws-cli/2.9.19 ')) expect(r.stderr).toMatch(/Invalid choice/);
    else expect(r.stderr).not.toMatch(/Invalid choice/);
  });
});

describe('cdk destroy', { timeout: 180_000 }, () => {
  it('removes the function and the rule; keeps both queues (retained by default)', async () => {
    await cdk(moto, ['destroy', '--force', '--output', join(work, 'cdk.out')], work);
    await expect(
      aws.lambda.send(new GetFunctionCommand({ FunctionName: fn.FunctionName })),
    ).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    const { Rules = [] } = await aws.events.send(new ListRulesCommand({ EventBusName: 'default' }));
    expect(Rules.map((r) => r.Name)).not.toContain(physicalId('AWS::Events::Rule', 'EndpointSendEmailRule'));
    const urls = (await aws.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [];
    for (const arn of [outputs.DeadLetterQueueArn!, outputs.ParkedQueueArn!]) {
      expect(urls.some((u) => u.endsWith(`/${arn.split(':').pop()}`))).toBe(true);
    }
  }, 240_000);

  it("section 11's leftovers: both log groups, the three queues, the delivery bucket, the send records table and the secret go", async () => {
    const groups = 'aws logs describe-log-groups --query logGroups[].logGroupName --output json';
    const before = JSON.parse((await runShell(groups, { cwd: docDir, shimDir, moto })).stdout) as string[];
    expect(before).toEqual(expect.arrayContaining([outputs.FunctionLogGroup, outputs.AccessLogGroup]));
    await runDoc('aws logs delete-log-group');
    const after = JSON.parse((await runShell(groups, { cwd: docDir, shimDir, moto })).stdout) as string[];
    expect(after).not.toContain(outputs.FunctionLogGroup);
    expect(after).not.toContain(outputs.AccessLogGroup);
    const queues = (await aws.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [];
    for (const arn of [outputs.DeadLetterQueueArn!, outputs.ParkedQueueArn!]) {
      expect(queues.some((u) => u.endsWith(`/${arn.split(':').pop()}`))).toBe(false);
    }
    expect(queues).not.toContain(outputs.DeliveryQueueUrl);
    const buckets = await runShell('aws s3api list-buckets --query Buckets[].Name --output json', {
      cwd: docDir,
      shimDir,
      moto,
    });
    expect(JSON.parse(buckets.stdout) as string[]).not.toContain(outputs.DeliveryBucketName);
    const secret = await aws.secrets.send(new DescribeSecretCommand({ SecretId: SECRET_NAME }));
    expect(secret.DeletedDate).toBeInstanceOf(Date);
    const tables = await runShell('aws dynamodb list-tables --query TableNames --output json', {
      cwd: docDir,
      shimDir,
      moto,
    });
    expect(JSON.parse(tables.stdout)).not.toContain(outputs.SendRecordsTableName);
  });
});
