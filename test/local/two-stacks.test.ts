/**
 * Two local stacks in one process: each serves its own configuration and its own mail catcher. (Before each stack
 * built its own handler, the second `startLocal` wrote `process.env` and got the module-level handler, which had
 * read the FIRST stack's configuration: `/forms/b` answered 404 although the stack reported `formIds: ['b']`.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocal } from '../../local/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'two-stacks-'));
const stacks: LocalStack[] = [];
afterAll(async () => {
  for (const s of stacks.reverse()) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

async function stackWithForm(id: string, to: string): Promise<LocalStack> {
  const file = join(dir, `${id}.json`);
  writeFileSync(file, JSON.stringify({ forms: { [id]: { to, subject: `form ${id}` } } }));
  const s = await startLocal({ port: 0, smtpPort: 0, configFile: file });
  stacks.push(s);
  return s;
}

const post = (s: LocalStack, formId: string) =>
  fetch(`${s.url}/forms/${formId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ message: `to ${formId}` }),
  });

describe('two local stacks in one process', () => {
  it('each answers with its own forms and delivers to its own catcher', async () => {
    const a = await stackWithForm('a', 'team-a@example.com');
    const b = await stackWithForm('b', 'team-b@example.com');
    expect(b.formIds).toEqual(['b']);
    expect((await post(b, 'b')).status).toBe(200);
    expect((await post(b, 'a')).status).toBe(404); // a is the first stack's form only
    expect((await post(a, 'a')).status).toBe(200);
    expect((await post(a, 'b')).status).toBe(404);
    const to = (s: LocalStack) => s.catcher!.store.list().flatMap((m) => m.envelope.rcptTo);
    expect(to(a)).toEqual(['team-a@example.com']);
    expect(to(b)).toEqual(['team-b@example.com']);
  });
});
