export * from './endpoint.ts';
export * from './issues.ts';
export * from './secrets.ts';
export * from './smtp-secret.ts';
