// Errors of reading and replaying dead letters: each says what is wrong and how to fix it.
import { CodedError } from '../../../api/errors.ts';

export const DeadLetterErrorCode = {
  /** NATS cannot be reached (or has no JetStream). */
  Unreachable: 'DLQ_NATS_UNREACHABLE',
  /** The flow's dead-letter or ingest stream does not exist. */
  StreamMissing: 'DLQ_STREAM_MISSING',
  /** No dead letter at that sequence. */
  NotFound: 'DLQ_NOT_FOUND',
  /** A NATS request failed midway. */
  Failed: 'DLQ_REQUEST_FAILED',
} as const;
export type DeadLetterErrorCode = (typeof DeadLetterErrorCode)[keyof typeof DeadLetterErrorCode];

export class DeadLetterError extends CodedError<DeadLetterErrorCode> {
  override name = 'DeadLetterError';
}
