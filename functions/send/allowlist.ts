/**
 * Address patterns for recipient and sender allowlists: `user@example.com`, `*@example.com`,
 * `*@*.example.com`, `*`. `*` matches any run of characters except `@`-crossing ambiguity is irrelevant:
 * matching is on the whole address, case-insensitively (domains are case-insensitive; we also fold local parts,
 * which is what every mainstream provider does).
 */

const cache = new Map<string, RegExp>();

function compile(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    const body = pattern
      .toLowerCase()
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\/]/gu, '\\$&'))
      .join('.*');
    re = new RegExp(`^${body}$`, 'u');
    cache.set(pattern, re);
  }
  return re;
}

export function matchesAddressPattern(address: string, pattern: string): boolean {
  return compile(pattern).test(address.toLowerCase());
}

export function isAllowed(address: string, patterns: readonly string[] | undefined): boolean {
  if (patterns === undefined) return true;
  return patterns.some((p) => matchesAddressPattern(address, p));
}

/** The domain part of an address, for logs (never the local part). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at >= 0 ? address.slice(at + 1).toLowerCase() : '(none)';
}
