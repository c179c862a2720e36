// A loopback sink for outbound webhooks/events from the simulators: keeps the raw body (signatures are
// over raw bytes) and answers a settable status. For tests and the demo alike.
import { json, type RecordedRequest, serve } from './http.ts';

export interface Receiver {
  url: string;
  close(): Promise<void>;
  /** Every delivery; `rawBody` is the exact text that was signed. */
  requests: RecordedRequest[];
  /** Status to answer with (default 200). */
  status: number;
}

export async function startReceiver(options: { port?: number; status?: number } = {}): Promise<Receiver> {
  const requests: RecordedRequest[] = [];
  const state = { status: options.status ?? 200 };
  const served = await serve({
    port: options.port,
    requests,
    handle: () => json(state.status, { ok: true }),
  });
  return {
    url: served.url,
    close: served.close,
    requests,
    get status() {
      return state.status;
    },
    set status(s: number) {
      state.status = s;
    },
  };
}
