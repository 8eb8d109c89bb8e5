// Independent validation of the synthesized templates: cfn-lint (AWS's CloudFormation linter, its own resource
// specs) over the default app and the app with every optional part enabled. Zero findings, except the two rules
// CDK's own output trips, allowed by name only.
import './isolate-home.ts';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Code } from 'aws-cdk-lib/aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { requireTool } from '../support/tools.ts';
import { buildFixtureBundle, cdkJsonContext, tempDir } from './helpers.ts';
import { removeIsolatedHome } from './isolate-home.ts';

/**
 * W3005: an explicit DependsOn already implied by a Ref/GetAtt (CDK makes the function depend on its role, which
 * its Role property already references). I1022: "use Fn::Sub instead of Fn::Join" (CDK joins ARNs and URLs).
 */
const CDK_OWN_FINDINGS = ['W3005', 'I1022'];

/** Every optional part of the app switched on through its context keys (infra/app.ts). */
const EVERY_OPTION: Record<string, string> = {
  alarmEmail: 'ops@example.com',
  eventSources: 'com.example.shop,com.example.crm',
  reservedConcurrency: '3',
  rateLimit: '5',
  burstLimit: '9',
  formsRateLimit: '1',
  formsBurstLimit: '2',
  createSecret: 'true',
  redriveEnabled: 'true',
  destroyData: 'true',
  logLevel: 'debug',
};

interface Finding {
  Rule: { Id: string };
  Message: string;
  Filename: string;
  Location: { Path: (string | number)[] };
}

const work = tempDir('cfn-lint');
let bundleDir: string;

beforeAll(async () => {
  bundleDir = await buildFixtureBundle(join(work.dir, 'bundle'));
}, 60_000);

afterAll(() => {
  work.cleanup();
  removeIsolatedHome();
});

/** Synthesizes the app with `context` (cdk-nag on, as `cdk synth`) and writes the stack's template to a file. */
function templateFile(name: string, context: Record<string, string>): string {
  const { app, stack } = buildApp({
    outdir: join(work.dir, `out-${name}`),
    context: { ...cdkJsonContext(), ...context },
    endpoint: { code: Code.fromAsset(bundleDir) },
  });
  const template = app.synth().getStackArtifact(stack.artifactId).template as unknown;
  const file = join(work.dir, `${name}.template.json`);
  writeFileSync(file, JSON.stringify(template, null, 1));
  return file;
}

function cfnLint(files: string[]): Finding[] {
  const r = spawnSync(requireTool('cfn-lint'), ['--format', 'json', '--', ...files], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  // exit codes are a bit field of the finding levels (2 error, 4 warning, 8 info); anything else is a crash
  expect(r.status === null ? r.error : r.status & ~(2 | 4 | 8), r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Finding[];
}

const describeFinding = (f: Finding) => `${f.Rule.Id} ${f.Location.Path.join('/')}: ${f.Message}`;

describe('cfn-lint over the synthesized templates', { timeout: 180_000 }, () => {
  it('the default app and the app with every option: no finding but CDK-own W3005/I1022', () => {
    const files = [templateFile('default', {}), templateFile('every-option', EVERY_OPTION)];
    const findings = cfnLint(files);
    const unexpected = findings.filter((f) => !CDK_OWN_FINDINGS.includes(f.Rule.Id));
    expect(unexpected.map(describeFinding)).toEqual([]);
  });

  it('is a real check: a broken template is reported (E3002 unknown property)', () => {
    const file = join(work.dir, 'broken.template.json');
    writeFileSync(
      file,
      JSON.stringify({
        Resources: { Q: { Type: 'AWS::SQS::Queue', Properties: { NoSuchProperty: 1 } } },
      }),
    );
    const ids = cfnLint([file]).map((f) => f.Rule.Id);
    expect(ids).toContain('E3002');
  });
});
