// Errors of the worker shell and the JetStream resources a worker relies on: each with a stable
// code, the cause kept, and a message that names the resource and what to do.
import { CodedError } from '../../api/errors.ts';

export const WorkerErrorCode = {
  /** A stream the worker reads does not exist (the operator, or `tally run`, creates it). */
  StreamMissing: 'WORKER_STREAM_MISSING',
  /** A stream the worker writes to could not be read or created. */
  StreamUnavailable: 'WORKER_STREAM_UNAVAILABLE',
} as const;
export type WorkerErrorCode = (typeof WorkerErrorCode)[keyof typeof WorkerErrorCode];

export class WorkerError extends CodedError<WorkerErrorCode> {
  override name = 'WorkerError';
}
