#!/usr/bin/env node
// smtp-send — the package.json "bin" entry. Runs functions/cli/main.ts through tsx's ESM API (tsx is a
// devDependency): this is a repo tool for ops people with the repo checked out and `npm ci` done, so there is no
// build step to forget and the CLI is always the code in the tree. `tsImport` scopes the TypeScript loader to
// this one import tree (nothing is registered globally). `npm run cli -- …` is the same CLI via the tsx binary.
let cli;
try {
  const { tsImport } = await import('tsx/esm/api');
  cli = await tsImport('../functions/cli/main.ts', import.meta.url);
} catch (err) {
  process.stderr.write(
    `smtp-send: cannot start (run \`npm ci\` in the repo first?): ${err?.message ?? err}\n`,
  );
  process.exit(1);
}
await cli.main(process.argv.slice(2));
