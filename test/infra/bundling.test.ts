// The real NodejsFunction path, once: esbuild bundles the product handler (ESM + createRequire banner, minified,
// source map), a configuration too large for the environment ships as a file through the afterBundling hook,
// and the bundled handler — loaded from the asset directory like Lambda would — answers a form preflight from it.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEndpointConfig, parseEndpointConfig } from '../../functions/config/endpoint.ts';
import { buildApp } from '../../infra/app.ts';
import { CONFIG_FILE_NAME } from '../../infra/smtp-send-endpoint.ts';
import { cdkJsonContext, largeConfig, tempDir } from './helpers.ts';
import { removeIsolatedHome } from './isolate-home.ts';

const work = tempDir('bundling');
const config = largeConfig();
let assetDir: string;
let env: Record<string, string>;
let handlerName: string;

type Handler = (
  event: unknown,
  context: unknown,
) => Promise<{ statusCode: number; headers: Record<string, string> }>;

beforeAll(() => {
  const outdir = join(work.dir, 'out');
  const { stack } = buildApp({ outdir, nag: false, context: cdkJsonContext(), endpoint: { config } });
  const template = Template.fromStack(stack);
  const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0] as {
    Properties: { Environment: { Variables: Record<string, string> }; Handler: string };
  };
  env = fn.Properties.Environment.Variables;
  handlerName = fn.Properties.Handler;
  const assets = readdirSync(outdir).filter((d) => d.startsWith('asset.'));
  expect(assets).toHaveLength(1);
  assetDir = join(outdir, assets[0]!);
}, 180_000);

afterAll(() => {
  work.cleanup();
  removeIsolatedHome();
});

describe('bundling the product handler with NodejsFunction', () => {
  it('produces a minified ESM bundle with the createRequire banner and a source map', () => {
    expect(handlerName).toBe('index.handler');
    expect(readdirSync(assetDir).sort()).toEqual([CONFIG_FILE_NAME, 'index.mjs', 'index.mjs.map']);
    const code = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
    expect(code.split('\n', 1)[0]).toBe(
      "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    );
    // minified: far fewer lines than a readable bundle of this size
    expect(code.split('\n').length).toBeLessThan(200);
    expect(env.NODE_OPTIONS).toBe('--enable-source-maps');
  });

  it('ships a large configuration as a file instead of the 4 KB environment', () => {
    expect(env.ENDPOINT_CONFIG).toBeUndefined();
    expect(env.ENDPOINT_CONFIG_FILE).toBe(CONFIG_FILE_NAME);
    const shipped = JSON.parse(readFileSync(join(assetDir, CONFIG_FILE_NAME), 'utf8'));
    expect(shipped).toEqual(config);
    // what the function's own loader reads in Lambda (relative to LAMBDA_TASK_ROOT = the unpacked asset)
    expect(loadEndpointConfig({ ...env, LAMBDA_TASK_ROOT: assetDir })).toEqual(parseEndpointConfig(config));
  });

  it('loads like Lambda loads it and answers a form preflight from the shipped configuration', async () => {
    const mod = (await import(pathToFileURL(join(assetDir, 'index.mjs')).href)) as {
      handler: Handler;
      createHandler: (opts: { env: Record<string, string> }) => Handler & { close(): Promise<void> };
    };
    expect(typeof mod.handler).toBe('function');
    const handler = mod.createHandler({
      env: { ...env, LAMBDA_TASK_ROOT: assetDir, POWERTOOLS_LOG_LEVEL: 'ERROR' },
    });
    const preflight = (formId: string, origin: string) =>
      handler(
        {
          version: '2.0',
          routeKey: 'OPTIONS /forms/{formId}',
          rawPath: `/forms/${formId}`,
          rawQueryString: '',
          headers: { origin, accept: 'application/json' },
          pathParameters: { formId },
          requestContext: { http: { method: 'OPTIONS', path: `/forms/${formId}` }, stage: '$default' },
          isBase64Encoded: false,
        },
        {},
      );
    try {
      const ok = await preflight('form-7', 'https://site-7.example.com');
      expect(ok.statusCode).toBe(204);
      expect(ok.headers['access-control-allow-origin']).toBe('https://site-7.example.com');
      const wrongOrigin = await preflight('form-7', 'https://site-8.example.com');
      expect(wrongOrigin.statusCode).toBeGreaterThanOrEqual(400);
      const unknownForm = await preflight('no-such-form', 'https://site-7.example.com');
      expect(unknownForm.statusCode).toBe(404);
    } finally {
      await handler.close();
    }
  });

  it('stages the config file inside the cloud assembly, not in the source tree', () => {
    expect(existsSync(join(work.dir, 'out', 'smtp-send-endpoint-config'))).toBe(true);
  });
});
