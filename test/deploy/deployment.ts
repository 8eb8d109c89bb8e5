/**
 * The pieces of the deploy test: the CDK CLI run against moto (bootstrap, `deploy --method=direct`, destroy),
 * the SDK clients pointed at it, the deployed zip fetched from the emulated asset bucket, and a child Node
 * process that runs that zip's handler with the function's deployed environment (test/deploy/run-zip.mjs).
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient } from '@aws-sdk/client-iam';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { unzipSync } from 'fflate';
import { ACCOUNT, type MotoServer, REGION } from '../support/moto-server.ts';
import { requireTool } from '../support/tools.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CDK_CLI = join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');
const RUN_ZIP = fileURLToPath(new URL('./run-zip.mjs', import.meta.url));

/** Runs the CDK CLI (the repo's cdk.json app) against moto; resolves to its output, rejects with its tail. */
export function cdk(moto: MotoServer, args: string[], home: string, timeoutMs = 240_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CDK_CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...moto.env, HOME: home, CI: 'true', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`cdk ${args.join(' ')}: exit ${code ?? signal}\n${out.slice(-4000)}`));
    });
  });
}

export function clients(moto: MotoServer) {
  const config = {
    region: REGION,
    endpoint: moto.url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  return {
    cloudFormation: new CloudFormationClient(config),
    lambda: new LambdaClient(config),
    iam: new IAMClient(config),
    sqs: new SQSClient(config),
    events: new EventBridgeClient(config),
    s3: new S3Client({ ...config, forcePathStyle: true }),
    secrets: new SecretsManagerClient(config),
  };
}
export type Clients = ReturnType<typeof clients>;

/** CloudFormation's pseudo parameters in a `Fn::Sub` string (what CDK writes for the asset bucket). */
export function resolveSub(value: unknown): string {
  const sub = (value as { 'Fn::Sub'?: string })?.['Fn::Sub'];
  const text = typeof value === 'string' ? value : sub;
  if (typeof text !== 'string') throw new Error(`not a string or Fn::Sub: ${JSON.stringify(value)}`);
  const pseudo: Record<string, string> = { 'AWS::AccountId': ACCOUNT, 'AWS::Region': REGION };
  return text.replace(/\$\{(AWS::\w+)\}/g, (whole, name: string) => pseudo[name] ?? whole);
}

/**
 * Downloads the function's zip from the bucket and key the deployed template names, checks it is the code
 * Lambda holds (CodeSha256), and unpacks it into `dir`. Returns the unpacked file names.
 */
export async function fetchDeployedZip(
  aws: Clients,
  functionName: string,
  code: { S3Bucket: unknown; S3Key: unknown },
  dir: string,
): Promise<string[]> {
  const bucket = resolveSub(code.S3Bucket);
  const key = resolveSub(code.S3Key);
  const object = await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const zip = await object.Body!.transformToByteArray();
  const fn = await aws.lambda.send(new GetFunctionCommand({ FunctionName: functionName }));
  const sha = createHash('sha256').update(zip).digest('base64');
  if (sha !== fn.Configuration?.CodeSha256) {
    throw new Error(
      `s3://${bucket}/${key} (sha256 ${sha}) is not the function's code (${fn.Configuration?.CodeSha256})`,
    );
  }
  const files = unzipSync(zip);
  for (const [name, bytes] of Object.entries(files)) {
    if (name.endsWith('/')) continue;
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  return Object.keys(files).filter((n) => !n.endsWith('/'));
}

/** A Python literal (moto returns some IAM policy documents as a Python dict's repr) as JSON, via python3. */
export function pythonLiteralToJson(text: string): unknown {
  const r = spawnSync(
    requireTool('python3'),
    ['-c', 'import ast,json,sys; print(json.dumps(ast.literal_eval(sys.stdin.read())))'],
    { input: text, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`not a Python literal: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** A policy document as IAM returns it: URL-encoded JSON (AWS), or moto's Python repr of the dict. */
export function policyDocument(raw: string): { Statement: Record<string, unknown>[] } {
  const text = decodeURIComponent(raw);
  try {
    return JSON.parse(text);
  } catch {
    return pythonLiteralToJson(text) as { Statement: Record<string, unknown>[] };
  }
}

export interface InvokeResult {
  // biome-ignore lint/suspicious/noExplicitAny: the handler's answer, checked by the test
  result?: any;
  error?: { errorType: string; errorMessage: string };
}

/** One child Node process running the unpacked zip's handler (see run-zip.mjs). */
export interface ZipRuntime {
  /** process.version of the child. */
  node: string;
  invoke(event: unknown, timeoutMs?: number): Promise<InvokeResult>;
  /** Everything the handler wrote to stdout/stderr (its logs). */
  output(): string;
  close(): Promise<void>;
}

export async function startZipRuntime(
  nodeBinary: string,
  taskRoot: string,
  env: Record<string, string>,
  functionArn: string,
): Promise<ZipRuntime> {
  const child: ChildProcess = fork(RUN_ZIP, [], {
    execPath: nodeBinary,
    execArgv: [],
    cwd: taskRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const pending = new Map<number, (r: InvokeResult) => void>();
  let nextId = 0;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const node = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the zip runtime did not start: ${out}`)), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the zip runtime exited (${code}) before it was ready: ${out}`));
    });
    child.on('message', (m: { ready?: boolean; node?: string; id?: number } & InvokeResult) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve(m.node!);
      } else if (m.id !== undefined) {
        pending.get(m.id)?.(m);
        pending.delete(m.id);
      }
    });
  });
  return {
    node,
    invoke(event, timeoutMs = 30_000) {
      const id = nextId++;
      return new Promise<InvokeResult>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`invoke ${id}: no answer in ${timeoutMs + 5000} ms`)),
          timeoutMs + 5000,
        );
        pending.set(id, (r) => {
          clearTimeout(timer);
          resolve(r);
        });
        child.send({ id, event, timeoutMs, invokedFunctionArn: functionArn });
      });
    },
    output: () => out,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
