/**
 * The EventBridge `detail-type` of an event that carries a send request in `detail`. One definition for the rule
 * (infra), the handler (eventbridge.ts) and the local server; no runtime dependencies (the CDK app imports it).
 */
export const SEND_EMAIL_DETAIL_TYPE = 'Send Email';
