// Errors of the bus: what failed in terms the flow can act on (retry later vs. misconfiguration).
import { CodedError } from '../../api/errors.ts';

export const BusErrorCode = {
  /** No stream captures the subject (JetStream "no responders"). */
  NoStream: 'BUS_NO_STREAM',
  /** Not connected, timed out, or the server refused for a reason that may pass. */
  Unavailable: 'BUS_UNAVAILABLE',
  /** The stream or consumer named in the config does not exist. */
  NotFound: 'BUS_NOT_FOUND',
  /** The bus is closed or closing. */
  Closed: 'BUS_CLOSED',
} as const;
export type BusErrorCode = (typeof BusErrorCode)[keyof typeof BusErrorCode];

export class BusError extends CodedError<BusErrorCode> {
  override name = 'BusError';
}
