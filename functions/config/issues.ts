import * as v from 'valibot';

/** One configuration or input problem: where (dot path) and what, never the offending value. */
export interface Issue {
  path: string;
  message: string;
}

/**
 * Turn valibot issues into `{ path, message }` pairs that never echo the received value
 * (valibot's default messages end with `but received "<value>"`, which could be a password).
 */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[], root = ''): Issue[] {
  return issues.map((issue) => {
    const dot = v.getDotPath(issue);
    const path = [root, dot].filter(Boolean).join('.') || root || '(root)';
    return { path, message: safeMessage(issue) };
  });
}

function safeMessage(issue: v.BaseIssue<unknown>): string {
  if (issue.kind === 'schema') {
    if (issue.received === 'undefined') return `required (expected ${issue.expected})`;
    if (issue.type === 'strict_object' || issue.type === 'object') {
      return issue.expected === 'never' ? 'unknown key' : `expected ${issue.expected}`;
    }
    return `expected ${issue.expected}`;
  }
  // Validation messages we write ourselves never contain values; valibot's defaults do, after "but received".
  return issue.message
    .replace(/\s*but received[\s\S]*$/, '')
    .replace(/^Invalid (\w+): Expected/, 'invalid $1: expected');
}

/** One line naming every problem: `a.b: required (expected string); c: expected number`. */
export function formatIssues(issues: Issue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}
