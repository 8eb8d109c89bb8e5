// The CDK app's inputs: config/endpoint.json validated with the function's own schema, and the context keys
// (`cdk deploy -c key=value`) that choose the secret, throttles, alarms and removal policy.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { Code } from 'aws-cdk-lib/aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointConfigError, parseEndpointConfig } from '../../functions/config/endpoint.ts';
import { buildApp, DEFAULT_SECRET_NAME, loadConfig } from '../../infra/app.ts';
import { buildFixtureBundle, cdkJsonContext, ROOT, tempDir } from './helpers.ts';
import { removeIsolatedHome } from './isolate-home.ts';

const work = tempDir('app');
let bundleDir: string;
let n = 0;

type Fn = { Properties: Record<string, unknown> & { Environment: { Variables: Record<string, string> } } };

function synth(context: Record<string, string>) {
  const { stack } = buildApp({
    outdir: join(work.dir, `out-${++n}`),
    nag: false,
    context: { ...cdkJsonContext(), ...context },
    endpoint: { code: Code.fromAsset(bundleDir) },
  });
  const template = Template.fromStack(stack);
  const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as Fn;
  return { stack, template, fn, env: fn.Properties.Environment.Variables };
}

beforeAll(async () => {
  bundleDir = await buildFixtureBundle(join(work.dir, 'bundle'));
}, 60_000);

afterAll(() => {
  work.cleanup();
  removeIsolatedHome();
});

describe('endpoint configuration', { timeout: 90_000 }, () => {
  it('reads config/endpoint.json through the schema and hands it to the function', () => {
    const fromFile = parseEndpointConfig(
      JSON.parse(readFileSync(join(ROOT, 'config', 'endpoint.json'), 'utf8')),
    );
    expect(loadConfig()).toEqual(fromFile);
    const { env, stack } = synth({});
    expect(stack.stackName).toBe('SmtpSendEndpoint');
    expect(JSON.parse(env.ENDPOINT_CONFIG!)).toEqual(fromFile);
    expect(env.SMTP_SECRET_ID).toBe(DEFAULT_SECRET_NAME);
  });

  it('fails the synth on an invalid configuration, naming the bad path', () => {
    const bad = join(work.dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ forms: { contact: { to: 'not an address', subject: 'x' } } }));
    expect(() => loadConfig(bad)).toThrow(EndpointConfigError);
    expect(() => loadConfig(bad)).toThrow(/forms\.contact\.to/);
    expect(() => synth({ config: bad })).toThrow(/forms\.contact\.to/);
  });

  it('refuses a configuration file named in context that does not exist', () => {
    expect(() => loadConfig(join(work.dir, 'missing.json'))).toThrow(/not found/);
  });
});

describe('context keys', { timeout: 90_000 }, () => {
  it('secretArn and createSecret choose the SMTP secret', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/smtp-a1B2c3';
    expect(synth({ secretArn: arn }).env.SMTP_SECRET_ID).toBe(arn);
    expect(synth({ secretName: 'other/smtp' }).env.SMTP_SECRET_ID).toBe('other/smtp');
    const created = synth({ createSecret: 'true' });
    const secrets = Object.keys(created.template.findResources('AWS::SecretsManager::Secret'));
    expect(secrets).toHaveLength(1);
    expect(created.env.SMTP_SECRET_ID).toEqual({ Ref: secrets[0] });
  });

  it('sets throttles, reserved concurrency, log level, stack name, removal policy and the redrive state', () => {
    const { template, fn, stack, env } = synth({
      stackName: 'MailProd',
      rateLimit: '25',
      formsBurstLimit: '3',
      reservedConcurrency: '4',
      logLevel: 'debug',
      destroyData: 'true',
      redriveEnabled: 'true',
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { Enabled: true });
    expect(stack.stackName).toBe('MailProd');
    expect(fn.Properties.ReservedConcurrentExecutions).toBe(4);
    expect(env.POWERTOOLS_LOG_LEVEL).toBe('DEBUG');
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 25, ThrottlingBurstLimit: 20 },
      RouteSettings: { 'POST /forms/{formId}': { ThrottlingRateLimit: 2, ThrottlingBurstLimit: 3 } },
    });
    for (const type of ['AWS::Logs::LogGroup', 'AWS::SQS::Queue']) {
      for (const r of Object.values(template.findResources(type))) expect(r.DeletionPolicy).toBe('Delete');
    }
  });

  it('leaves concurrency unreserved and the redrive disabled by default, unreserved with reservedConcurrency=0', () => {
    const defaults = synth({});
    expect(defaults.fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
    defaults.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { Enabled: false });
    expect(synth({ reservedConcurrency: '0' }).fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('rejects malformed values instead of deploying something else', () => {
    expect(() => synth({ logLevel: 'chatty' })).toThrow(/logLevel/);
    expect(() => synth({ reservedConcurrency: 'many' })).toThrow(/reservedConcurrency/);
    expect(() => synth({ rateLimit: '-1' })).toThrow(/rateLimit/);
  });
});
