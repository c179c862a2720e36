// The per-event work between the flow stream and the sinks: parse the payload, map it (canonical
// validation included), wrap it in its envelope and serialise it. Everything it needs comes in,
// plain data goes out (a failure too, already classified): the processor only moves messages and
// could run this anywhere. (Mapping threads were measured: on a 2-vCPU host they lowered the
// throughput, the I/O thread, the mapping threads and nats-server contending for the cores.)
import type { CanonicalEvent } from '../../api/envelope.ts';
import type { FlowWorkerConfig } from '../../api/worker-config.ts';
import type { CompiledMapping } from '../mapping/types.ts';
import { readsXrefs, withXrefs, type XrefSource } from '../xref/context.ts';
import { classifyFailure, type Failure } from './classify.ts';
import { buildEnvelope } from './envelope.ts';
import { PayloadError } from './errors.ts';
import type { TraceContext } from './trace.ts';

/** The envelope without its data: what sinks, logs and metrics read of an event. */
export type EventHead = Omit<CanonicalEvent, 'data'>;

export interface TransformInput {
  data: Uint8Array;
  sourceMsgId: string;
  trace: TraceContext;
  /** When the flow stream stored the message, ms since the epoch. */
  storedAtMs: number;
}

export type TransformResult =
  | {
      ok: true;
      head: EventHead;
      /** The serialised envelope every sink sends. */
      body: Uint8Array;
      /** The canonical entity (what outbound mappings and URL templates read). */
      data: Record<string, unknown>;
      /** The order's grand total, for the business counters (orders only). */
      grandTotal?: { amount: string; currency: string };
    }
  | { ok: false; failure: Failure };

export type Transform = (input: TransformInput) => Promise<TransformResult>;

/** An error whose classification is already known (it was made where the transform ran). */
export class TransformFailure extends Error {
  override name: string;
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(failure.message);
    this.name = failure.errorClass;
    this.failure = failure;
  }
}

export function failureOf(err: unknown): Failure {
  return err instanceof TransformFailure ? err.failure : classifyFailure(err);
}

function parseJson(data: Uint8Array): unknown {
  try {
    // A view, not a copy, of the message bytes.
    return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (err) {
    throw new PayloadError(`the source payload is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function grandTotalOf(event: CanonicalEvent): { amount: string; currency: string } | undefined {
  if (event.tallyentity !== 'Order') return undefined;
  const totals = (event.data as { totals?: { grandTotal?: { amount?: unknown; currency?: unknown } } })
    .totals;
  const g = totals?.grandTotal;
  return typeof g?.amount === 'string' && typeof g.currency === 'string'
    ? { amount: g.amount, currency: g.currency }
    : undefined;
}

export function createTransform(
  config: Pick<FlowWorkerConfig, 'flow' | 'mapping'>,
  mapping: CompiledMapping,
  /** The cross-reference store, for mappings that call $xref, $customer or $product. */
  xref?: XrefSource,
): Transform {
  // The hot path stays as it was for mappings that read no cross-reference (most inbound ones).
  const map = readsXrefs(config.mapping.expression, config.mapping.businessKey)
    ? (payload: unknown) => withXrefs(xref, (bindings) => mapping.map(payload, bindings))
    : (payload: unknown) => mapping.map(payload);
  return async (input) => {
    try {
      const mapped = await map(parseJson(input.data));
      const event = buildEnvelope({
        flow: config.flow,
        mapping: config.mapping,
        output: mapped.output,
        key: mapped.key,
        sourceMsgId: input.sourceMsgId,
        trace: input.trace,
        time: new Date(input.storedAtMs),
      });
      const body = Buffer.from(JSON.stringify(event));
      const { data: _data, ...head } = event;
      const grandTotal = grandTotalOf(event);
      return { ok: true, head, body, data: mapped.output, ...(grandTotal ? { grandTotal } : {}) };
    } catch (err) {
      return { ok: false, failure: classifyFailure(err) };
    }
  };
}
