/**
 * Where the endpoint configuration comes from and its JSON: `ENDPOINT_CONFIG` (inline JSON) or
 * `ENDPOINT_CONFIG_FILE` (a path; relative paths resolve against `LAMBDA_TASK_ROOT`, else the working directory).
 * Apart from the schema (`endpoint.ts`) so that a cold start's first module can read the `smtp` server from it
 * (`smtp-server.ts`) before the rest of the code loads.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { formatIssues, type Issue } from './issues.ts';

export class EndpointConfigError extends Error {
  override readonly name = 'EndpointConfigError';
  constructor(
    readonly source: string,
    readonly issues: Issue[],
  ) {
    super(`invalid endpoint configuration (${source}): ${formatIssues(issues)}`);
  }
}

/** The configuration's JSON value, and where it came from; `{}` (source `default`) when neither variable is set. */
export function readEndpointConfigJson(env: NodeJS.ProcessEnv): { value: unknown; source: string } {
  const inline = env.ENDPOINT_CONFIG?.trim();
  if (inline) return { value: parseConfigJson(inline, 'ENDPOINT_CONFIG'), source: 'ENDPOINT_CONFIG' };
  const file = env.ENDPOINT_CONFIG_FILE?.trim();
  if (!file) return { value: {}, source: 'default' };
  const source = `ENDPOINT_CONFIG_FILE=${file}`;
  const path = isAbsolute(file) ? file : resolve(env.LAMBDA_TASK_ROOT || process.cwd(), file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new EndpointConfigError(source, [
      { path: '(file)', message: `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})` },
    ]);
  }
  return { value: parseConfigJson(text, source), source };
}

/** JSON.parse, its failure an `EndpointConfigError` that gives the position, never the text. */
export function parseConfigJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const where = /position (\d+)/.exec(String((e as Error).message))?.[1];
    throw new EndpointConfigError(source, [
      { path: '(root)', message: `not valid JSON${where ? ` (near character ${where})` : ''}` },
    ]);
  }
}
