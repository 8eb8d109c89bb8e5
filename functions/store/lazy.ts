/**
 * The send records, loaded on first use: Powertools' idempotency layer (with its JMESPath engine) and our
 * DynamoDB client are evaluated when the first message is sent or looked up (or in the instance prewarm), not
 * during init.
 */
import type {
  Claim,
  ClaimResult,
  MessageRecord,
  MessageStatus,
  SendRecordStore,
  StoredOutcome,
  TrackOptions,
} from '../send/idempotency.ts';
import type { SendRecordTableOptions } from './send-records.ts';

export function lazySendRecords(opts: SendRecordTableOptions): SendRecordStore {
  let loaded: Promise<SendRecordStore> | undefined;
  const store = () => {
    loaded ??= import('./send-records.ts').then(
      (m) => new m.DynamoSendRecords(opts),
      (e: unknown) => {
        loaded = undefined;
        throw e;
      },
    );
    return loaded;
  };
  return {
    once: async (claim: Claim, work: (r: MessageRecord) => Promise<StoredOutcome>): Promise<ClaimResult> =>
      (await store()).once(claim, work),
    track: (t: TrackOptions) => {
      const record = store().then((s) => s.track(t));
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
