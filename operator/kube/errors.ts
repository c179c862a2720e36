import { TallyError } from '../../api/errors.ts';
export const KUBE_ERROR_CODES = { api: 'KUBE_API', transport: 'KUBE_TRANSPORT' } as const;

/** The apiserver answered with an error status (the body is a metav1.Status). */
export class KubeApiError extends TallyError {
  override name = 'KubeApiError';
  readonly code = KUBE_ERROR_CODES.api;
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.reason = reason;
  }
}

/** The apiserver could not be reached or the connection broke. */
export class KubeTransportError extends TallyError {
  override name = 'KubeTransportError';
  readonly code = KUBE_ERROR_CODES.transport;
}

export const isNotFound = (e: unknown) => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof KubeApiError && e.status === 409;
export const isGone = (e: unknown) => e instanceof KubeApiError && e.status === 410;
