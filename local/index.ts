/** The local stack's programmatic API (see docs/local.md). */

export { type CaughtMessage, type MessageStore, summarize } from './mail-catcher.ts';
export {
  DEFAULT_PORT,
  DEFAULT_SMTP_PORT,
  type LocalStack,
  PortInUseError,
  type RelayOptions,
  type StartLocalOptions,
  startLocal,
  toEventBridgeEvent,
} from './server.ts';
