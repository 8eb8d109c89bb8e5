export * from './allowlist.ts';
export * from './deliver.ts';
export * from './errors.ts';
export * from './request.ts';
export * from './transport.ts';
export * from './types.ts';
