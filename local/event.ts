/**
 * Post an EventBridge event (or just its detail) from a file to a running `npm start`:
 *   npx tsx local/event.ts event.json        (PORT picks the server, default 3000)
 */
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: npx tsx local/event.ts <event-or-detail.json>\n');
  process.exit(2);
}
let body: string;
try {
  body = readFileSync(file, 'utf8');
  JSON.parse(body);
} catch (e) {
  process.stderr.write(`${file}: ${(e as Error).message}\n`);
  process.exit(2);
}
const port = process.env.PORT || '3000';
try {
  const res = await fetch(`http://127.0.0.1:${port}/_local/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  const failed = res.headers.get('x-amz-function-error');
  process.stdout.write(`${failed ? `function error (${failed}): ` : ''}${text}\n`);
  process.exit(res.ok && !failed ? 0 : 1);
} catch (e) {
  process.stderr.write(
    `cannot reach http://127.0.0.1:${port} (is npm start running?): ${(e as Error).message}\n`,
  );
  process.exit(1);
}
