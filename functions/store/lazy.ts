/**
 * The send records, loaded on first use: Powertools' idempotency layer (with its JMESPath engine) and our
 * DynamoDB client are evaluated when the first message is sent or looked up (or in the instance prewarm), not
 * during init. The handler hands over the loader (`handlers/store-chunk.ts`: the bundle's chunk for it).
 */
import { atFirstUse, loadFailureName } from '../send/first-use.ts';
import {
  type Claim,
  type ClaimResult,
  type MessageRecord,
  type MessageStatus,
  RecordStoreError,
  type SendRecordStore,
  type StoredOutcome,
  type TrackOptions,
} from '../send/idempotency.ts';
import type { DynamoSendRecords, SendRecordTableOptions } from './send-records.ts';

/** The store's code, as the handler loads it (`handlers/store-chunk.ts`, a chunk of its own in the bundle). */
export type SendRecordsCode = () => Promise<{ DynamoSendRecords: typeof DynamoSendRecords }>;

export function lazySendRecords(opts: SendRecordTableOptions, load: SendRecordsCode): SendRecordStore {
  // A failed load is the store being unavailable (idempotency_unavailable, nothing sent), as an unreachable table is.
  const store = atFirstUse(
    async () => new (await load()).DynamoSendRecords(opts),
    (e) => new RecordStoreError(`the send records code could not be loaded (${loadFailureName(e)})`, false),
  );
  return {
    once: async (claim: Claim, work: (r: MessageRecord) => Promise<StoredOutcome>): Promise<ClaimResult> =>
      (await store()).once(claim, work),
    track: (t: TrackOptions) => {
      const record = store().then((s) => s.track(t));
      record.catch(() => {}); // its failure is the marker's or the finish's to report (unseen if neither is called)
      return {
        markDataEnd: async (status: MessageStatus) => (await record).markDataEnd(status),
        finish: async (status: MessageStatus) => (await record).finish(status),
      };
    },
    status: async (messageId: string) => (await store()).status(messageId),
    saveStatus: async (status: MessageStatus, ttlSeconds: number) =>
      (await store()).saveStatus(status, ttlSeconds),
    sendRate: (perSecond: number) => ({
      perSecond,
      take: async (wanted: number) => (await store()).sendRate(perSecond).take(wanted),
    }),
    preload: () => {
      store().catch(() => {}); // a failed load is retried by the first call
    },
  };
}
