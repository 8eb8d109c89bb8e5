/**
 * The send records store, as the chunk `store/lazy.ts` loads at the first message sent or looked up (or in the
 * instance prewarm): Powertools' idempotency layer, its JMESPath engine and our DynamoDB client.
 */
// Loaded after init. Its first import is the instance's code (already evaluated by then). Every chunk that loads at
// first use (this one, multipart-chunk.ts, captcha-verify.ts, sqs-records.ts) starts so: each then reaches all of
// init's code, and esbuild's code splitting keeps that code together instead of splitting it by which lazy chunks
// share each part (each extra file init loads costs ~0.6 ms of CPU; docs/benchmarks.md, bundling.test.ts).
import './instance.ts';

export { DynamoSendRecords } from '../store/send-records.ts';
