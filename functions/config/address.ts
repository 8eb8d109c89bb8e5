/**
 * Addresses in configuration (form `to`/`cc`/`bcc`, the secret's `from`, the `/send` allowlists) go through the
 * same `parseMailbox` as every request, when the configuration is read (cold start; the secret: when fetched),
 * so a bad one fails there with the path to the field instead of failing every request later.
 */
import * as v from 'valibot';
import { MimeError } from '../mime/error.ts';
import { parseMailbox } from '../mime/index.ts';
import { mimeDetail } from '../send/request.ts';

function mailboxProblem(s: string): string | undefined {
  try {
    const m = parseMailbox(s);
    if (m.name !== undefined || s.includes('<')) return 'must be a plain address like name@example.com';
    return undefined;
  } catch (e) {
    return e instanceof MimeError ? `is not a valid address: ${mimeDetail(e)}` : 'is not a valid address';
  }
}

/** A plain address (`name@example.com`, no display name), normalised to its wire form (A-label domain). */
export const PlainAddress = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed ? mailboxProblem(dataset.value) : undefined;
    if (problem) addIssue({ message: problem });
  }),
  v.transform((s) => parseMailbox(s).address),
);

/** `user@example.com`, `*@example.com`, `*@*.example.com`, `*` — `*` matches any run of characters. */
export const AddressPattern = v.pipe(
  v.string(),
  v.regex(/^(\*|[^\s@]+@[^\s@]+)$/u, 'must be an address pattern like *@example.com'),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed || dataset.value === '*') return;
    // Each `*` stands for some characters: the pattern with letters in their place must be an address.
    const problem = mailboxProblem(dataset.value.replaceAll('*', 'a'));
    if (problem) addIssue({ message: problem.replace('address', 'address pattern') });
  }),
);
