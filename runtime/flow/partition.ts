// Which flow-stream subject a source payload goes to. Ordered flows (delivery.partitionKey set)
// spread keys over `delivery.partitions` subjects by a stable hash, so every event of one key lands
// on one partition, whose consumer hands out one message at a time (docs/delivery.md). Every
// source calls the same router, so a key never depends on where the event came in.

import jsonata from 'jsonata';
import { TallyError } from '../../api/errors.ts';
import { EVALUATE_ENTRY_HOOK, evaluationGuard } from '../mapping/evaluation-guard.ts';
import type { Logger } from '../telemetry/logger.ts';

/** Time allowed for the partition key expression on one payload. */
export const PARTITION_KEY_TIMEOUT_MS = 100;
const PARTITION_KEY_MAX_DEPTH = 50;

/**
 * 32-bit FNV-1a of the key's UTF-8 bytes, modulo the partition count. Stable across processes,
 * versions and platforms, so anyone publishing to the flow stream directly can compute it too.
 */
export function partitionOf(key: string, partitions: number): number {
  if (partitions <= 1) return 0;
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}

/** The key as text: strings as they are, numbers in JSON form, anything else as JSON; none -> undefined. */
export function keyText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  return JSON.stringify(value);
}

export class PartitionKeyError extends TallyError {
  override name = 'PartitionKeyError';
  readonly code = 'FLOW_PARTITION_KEY_INVALID';
}

/** Why a partition key expression does not compile, or undefined when it does (for offline checks). */
export function partitionKeyProblem(source: string): string | undefined {
  try {
    jsonata(source);
    return undefined;
  } catch (err) {
    return `is not a valid JSONata expression: ${(err as Error).message}`;
  }
}

export interface IngestRoute {
  subject: string;
  partition: number;
  /** The ordering key, when the flow is ordered and the payload gave one. */
  key?: string;
}

/** Where one raw payload goes; `parsed` saves a second JSON.parse when the caller has it. */
export type IngestRouter = (data: Uint8Array, parsed?: unknown) => Promise<IngestRoute>;

export interface IngestRouterOptions {
  /** JSONata over the raw payload; absent: unordered, everything on partition 0. */
  partitionKey: string | undefined;
  partitions: number;
  /** The flow-stream subject of a partition. */
  subject: (partition: number) => string;
  logger: Logger;
}

/**
 * Compiles the partition key once (throws PartitionKeyError when it does not compile, so a worker
 * fails at startup). A payload without a usable key is never refused: it goes to partition 0 and
 * the mapping decides its fate (a payload that is not JSON is dead-lettered there).
 */
export function createIngestRouter(o: IngestRouterOptions): IngestRouter {
  if (o.partitionKey === undefined) {
    const route = { subject: o.subject(0), partition: 0 };
    return async () => route;
  }
  const source = o.partitionKey;
  let expr: jsonata.Expression;
  try {
    expr = jsonata(source, { stack: PARTITION_KEY_MAX_DEPTH });
  } catch (err) {
    throw new PartitionKeyError(
      `delivery.partitionKey (${source}) is not a valid JSONata expression: ${(err as Error).message}`,
      { cause: err },
    );
  }
  expr.assign(
    EVALUATE_ENTRY_HOOK as unknown as string,
    evaluationGuard('expression', PARTITION_KEY_TIMEOUT_MS),
  );
  const partitions = Math.max(1, o.partitions);
  const fallback = (why: string, extra: Record<string, unknown> = {}): IngestRoute => {
    o.logger.warn({ ...extra, partitionKey: source }, `no partition key (${why}); using partition 0`);
    return { subject: o.subject(0), partition: 0 };
  };
  return async (data, parsed) => {
    let payload = parsed;
    if (payload === undefined) {
      try {
        payload = JSON.parse(Buffer.from(data).toString('utf8'));
      } catch {
        return fallback('the payload is not JSON');
      }
    }
    let key: string | undefined;
    try {
      key = keyText(await expr.evaluate(payload));
    } catch (err) {
      return fallback('the expression failed', { err: (err as Error).message });
    }
    if (key === undefined) return fallback('the expression gave nothing');
    const partition = partitionOf(key, partitions);
    return { subject: o.subject(partition), partition, key };
  };
}
