// HTTP sink: one request per event, bounded in flight and in rate. 2xx delivered; 408/409/429/5xx/network
// errors transient; other answers permanent. A circuit breaker leaves a failing sink alone for a
// cool-down, and a Retry-After on 429/503 pauses the whole sink (not just that event): events
// meanwhile fail fast without a request, and the processor hands them back with that delay.
//
// Speaking the target's own API (docs/two-way-sync.md): an outbound mapping renders the body,
// headers and URL values (else the CloudEvent is sent); with `xref`, the cross-reference store says
// whether the target already has the object (update to its id, or nothing to send) or not (create),
// and the id the target assigns is captured into the store before the event is acknowledged. A
// create answered "already exists" is delivered when the id is known or can be read from the answer.
import { Agent, request } from 'undici';
import { idempotencyKey } from '../../../api/envelope.ts';
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import { compileOutboundMapping } from '../../mapping/outbound.ts';
import { withXrefs } from '../../xref/context.ts';
import type { XrefStore } from '../../xref/store.ts';
import { classifyHttpStatus, parseRetryAfterMs } from '../classify.ts';
import { FlowErrorCode, SinkError } from '../errors.ts';
import { credentialSecrets, redact } from '../redact.ts';
import type { Env } from '../secrets.ts';
import type { EventHead } from '../transform.ts';
import { requestAuth } from './auth.ts';
import { answerBody, compileCapture } from './capture.ts';
import { CircuitBreaker, type CircuitState, DEFAULT_CIRCUIT_BREAKER } from './circuit-breaker.ts';
import { Semaphore, TokenBucket } from './limits.ts';
import { OAuth2Error } from './oauth2.ts';
import { isAlreadyExists, planWrite } from './target-write.ts';
import type { Sink } from './types.ts';
import { UrlTemplateError } from './url-template.ts';

export type HttpSinkConfig = Extract<FlowWorkerConfig['sinks'][number], { type: 'http' }>;

export const CLOUDEVENTS_JSON = 'application/cloudevents+json; charset=utf-8';
const ERROR_BODY_BYTES = 2048;
/** Enough for any id-bearing answer; a larger one is cut (and its capture may then miss). */
const CAPTURE_BODY_BYTES = 256 * 1024;

export interface HttpSinkOptions {
  env: Env;
  /** The namespace's cross-reference store; needed by sinks with xref or an outbound mapping. */
  xref?: XrefStore;
  /** The flow that writes captured ids (namespace/name), recorded with them. */
  flow?: string;
  /** Observes each request: status code as text, or "error" / "timeout". */
  observe?: (code: string, seconds: number) => void;
  /** Called when the circuit breaker changes state. */
  onCircuitChange?: (from: CircuitState, to: CircuitState) => void;
  /** Longest sink-wide pause a Retry-After can ask for; default 5 min (the flow's maxBackoff is apt). */
  maxRetryAfterMs?: number;
  /** Monotonic clock in ms; default performance.now. */
  now?: () => number;
}

const DEFAULT_MAX_RETRY_AFTER_MS = 300_000;

/** The request headers for one event (pure, for tests). */
export function httpSinkHeaders(
  config: HttpSinkConfig,
  event: EventHead,
  auth: [string, string] | undefined,
  rendered?: { contentType: string; headers: Record<string, string> },
): Record<string, string> {
  const headers: Record<string, string> = { ...config.headers, ...rendered?.headers };
  headers['content-type'] = rendered?.contentType ?? CLOUDEVENTS_JSON;
  headers[config.idempotencyKeyHeader] = idempotencyKey(event);
  headers.traceparent = event.traceparent;
  if (auth) headers[auth[0]] = auth[1];
  return headers;
}

async function readSome(
  body: AsyncIterable<Uint8Array> & { destroy(): void },
  limit = ERROR_BODY_BYTES,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

const headerText = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : (v ?? ''));

function lowerHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), headerText(v)]));
}

export function createHttpSink(config: HttpSinkConfig, options: HttpSinkOptions): Sink {
  const what = `sink ${config.name}`;
  const auth = config.auth ? requestAuth(config.auth, options.env, what) : undefined;
  const outbound = config.bodyMapping ? compileOutboundMapping(config.bodyMapping) : undefined;
  const xrefConfig = config.xref;
  const capture = xrefConfig ? compileCapture(config.name, xrefConfig) : undefined;
  const store = options.xref;
  if ((xrefConfig || outbound) && !store) {
    throw new Error(
      `${what}: a cross-reference store is needed (xref or an outbound mapping) but none was given`,
    );
  }
  const agent = new Agent({
    connections: config.maxInFlight,
    headersTimeout: config.timeoutMs,
    bodyTimeout: config.timeoutMs,
  });
  const slots = new Semaphore(config.maxInFlight);
  const bucket = config.rateLimit
    ? new TokenBucket({
        requestsPerSecond: config.rateLimit.requestsPerSecond,
        burst: config.rateLimit.burst,
      })
    : undefined;
  const observe = options.observe ?? (() => {});
  const closing = new AbortController();
  const now = options.now ?? (() => performance.now());
  const breaker = new CircuitBreaker({
    ...(config.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER),
    now,
    ...(options.onCircuitChange ? { onChange: options.onCircuitChange } : {}),
  });
  const maxPauseMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  /** Sink-wide: no request before this (a Retry-After on 429/503). */
  let pausedUntil = 0;
  /**
   * The credentials this sink has sent (the static header, the latest OAuth 2.0 tokens), masked in
   * every error message wherever they appear; a few, as tokens are renewed.
   */
  const sent: string[] = [];
  const remember = (credentials: [string, string] | undefined) => {
    if (!credentials || sent.includes(credentials[1])) return;
    sent.push(credentials[1]);
    if (sent.length > 4) sent.shift();
  };

  // Every message goes through redact(): it becomes the dead letter's Tally-Error-Message and the
  // log line, and a target's error answer may echo the request (its Authorization header too).
  const sinkError = (
    message: string,
    permanent: boolean,
    code: SinkError['code'],
    extra: { status?: number; retryAfterMs?: number } = {},
    cause?: unknown,
  ) =>
    new SinkError(
      redact(message, { secrets: sent.flatMap(credentialSecrets) }),
      { sink: config.name, permanent, code, ...extra },
      cause ? { cause } : undefined,
    );

  /** Throws, without calling the sink, while it asked to be left alone. */
  const checkPause = () => {
    const left = Math.ceil(pausedUntil - now());
    if (left > 0) {
      throw sinkError(
        `${what}: the sink asked to wait (Retry-After); ${left} ms left`,
        false,
        FlowErrorCode.SinkThrottled,
        { retryAfterMs: left },
      );
    }
  };

  const authHeaderOf = async (): Promise<[string, string] | undefined> => {
    if (!auth) return undefined;
    try {
      return await auth.header();
    } catch (err) {
      if (err instanceof OAuth2Error) {
        const refused = err.code === 'OAUTH2_REFUSED' || err.permanent;
        throw sinkError(
          `${what}: ${err.message}`,
          refused,
          refused ? FlowErrorCode.SinkAuthRefused : FlowErrorCode.SinkUnavailable,
          err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {},
          err,
        );
      }
      throw err;
    }
  };

  /** One request through the limits and the breaker; a 401 with a fresh token is asked once more. */
  async function send(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
  ) {
    checkPause();
    await bucket?.acquire(closing.signal);
    checkPause();
    const admission = breaker.admit();
    if (!admission.allowed) {
      throw sinkError(
        `${what}: circuit open after repeated failures; not called, retrying in ${admission.retryInMs} ms`,
        false,
        FlowErrorCode.SinkCircuitOpen,
        { retryAfterMs: admission.retryInMs },
      );
    }
    const probe = admission.probe;
    const started = now();
    try {
      for (let attempt = 1; ; attempt++) {
        const credentials = await authHeaderOf();
        remember(credentials);
        if (credentials) headers[credentials[0]] = credentials[1];
        const res = await request(url, {
          dispatcher: agent,
          method: method as 'POST',
          headers,
          ...(body !== undefined && method !== 'DELETE' ? { body } : {}),
          signal: AbortSignal.any([AbortSignal.timeout(config.timeoutMs), closing.signal]),
        });
        observe(String(res.statusCode), (now() - started) / 1000);
        if (res.statusCode === 401 && credentials && attempt === 1 && auth!.refused(credentials)) {
          await res.body.dump();
          continue; // the token expired or was revoked early: once more with a new one
        }
        const status = res.statusCode;
        const outcome = classifyHttpStatus(status);
        // 409, 429 and permanent answers come from a sink that is up; 408/5xx count against it.
        if (outcome === 'transient' && status !== 429 && status !== 409) breaker.failure(probe);
        else breaker.success(probe);
        return { res, status, outcome, credentials };
      }
    } catch (err) {
      if (err instanceof SinkError) throw err;
      breaker.failure(probe);
      const e = err as Error & { code?: string };
      const timedOut =
        e.name === 'TimeoutError' ||
        e.code === 'UND_ERR_HEADERS_TIMEOUT' ||
        e.code === 'UND_ERR_BODY_TIMEOUT' ||
        e.code === 'UND_ERR_CONNECT_TIMEOUT';
      observe(timedOut ? 'timeout' : 'error', (now() - started) / 1000);
      throw sinkError(
        timedOut
          ? `${what}: ${method} ${url} got no answer within ${config.timeoutMs} ms`
          : `${what}: ${method} ${url} failed: ${e.code ? `${e.code} ` : ''}${e.message}`,
        false,
        timedOut ? FlowErrorCode.SinkTimeout : FlowErrorCode.SinkUnavailable,
        {},
        err,
      );
    }
  }

  return {
    name: config.name,
    type: 'http',
    circuit: () => breaker.state,
    async deliver(event, envelope, data) {
      const release = await slots.acquire();
      try {
        // 1. The request the target expects (its own body, headers and URL values), or the CloudEvent.
        const rendered = outbound
          ? await withXrefs(store, (bindings) => outbound.render(data, bindings))
          : undefined;
        const params = rendered?.params ?? {};
        // 2. Create or update: does the target already have this object?
        const entity = xrefConfig?.entity ?? event.tallyentity;
        const knownId = xrefConfig
          ? (await store!.get(entity, event.subject))?.ids[xrefConfig.system]
          : undefined;
        let plan: ReturnType<typeof planWrite>;
        try {
          plan = planWrite(config, knownId, params, data);
        } catch (err) {
          if (err instanceof UrlTemplateError) {
            throw sinkError(err.message, true, FlowErrorCode.SinkUrlTemplate, {}, err);
          }
          throw err;
        }
        if (plan.kind === 'known') {
          return { outcome: 'known', targetId: knownId!, system: xrefConfig!.system };
        }
        // 3. Send it.
        const headers = httpSinkHeaders(config, event, undefined, rendered);
        const { res, status, outcome, credentials } = await send(
          plan.method,
          plan.url,
          headers,
          rendered ? rendered.body : envelope,
        );
        const target = `${what}: ${plan.method} ${plan.url}`;
        if (outcome === 'delivered') {
          if (!xrefConfig) {
            await res.body.dump();
            return undefined;
          }
          // 4. Capture the id the target assigned, and record it before the event is acknowledged.
          const text = await readSome(res.body, CAPTURE_BODY_BYTES).catch(() => '');
          const resHeaders = lowerHeaders(res.headers);
          const answer = {
            status,
            headers: resHeaders,
            body: answerBody(text, resHeaders['content-type']),
            event: data,
          };
          const id = plan.kind === 'update' ? knownId! : await capture!.id(answer);
          if (id === undefined) {
            throw sinkError(
              `${target} answered ${status} but xref.capture (${xrefConfig.capture ?? 'not set'}) found no id in the answer; the target has the event: fix xref.capture, then record the id with tally xref put before replaying`,
              true,
              FlowErrorCode.CaptureMissing,
              { status },
            );
          }
          await record(entity, event, id, data);
          return {
            outcome: plan.kind === 'update' ? 'updated' : 'created',
            targetId: id,
            system: xrefConfig.system,
          };
        }
        const text = await readSome(res.body).catch(() => '');
        // 5. "Already exists" for a create: delivered when the id is known or the answer names it.
        if (plan.kind === 'create' && isAlreadyExists(config, status, text)) {
          const resHeaders = lowerHeaders(res.headers);
          const answer = {
            status,
            headers: resHeaders,
            body: answerBody(text, resHeaders['content-type']),
            event: data,
          };
          const id =
            (await store!.get(entity, event.subject))?.ids[xrefConfig!.system] ?? (await capture!.id(answer));
          if (id !== undefined) {
            await record(entity, event, id, data);
            return { outcome: 'already_exists', targetId: id, system: xrefConfig!.system };
          }
          throw sinkError(
            `${target} answered ${status}: the object already exists there, but Tally holds no ${xrefConfig!.system} id for ${entity} ${event.subject} and xref.capture found none in the answer; record it with tally xref put, then replay${text ? ` (answer: ${text})` : ''}`,
            true,
            FlowErrorCode.SinkDuplicate,
            { status },
          );
        }
        const retryAfter = res.headers['retry-after'];
        const askedMs = parseRetryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, Date.now());
        const retryAfterMs = askedMs === undefined ? undefined : Math.min(askedMs, maxPauseMs);
        if (retryAfterMs !== undefined && (status === 429 || status === 503)) {
          pausedUntil = Math.max(pausedUntil, now() + retryAfterMs);
        }
        const refusedAgain =
          status === 401 && credentials !== undefined && config.auth?.type === 'oauth2ClientCredentials';
        const permanent = outcome === 'permanent';
        throw sinkError(
          `${target} answered ${status}${text ? `: ${text}` : ''}${
            refusedAgain
              ? " (refused a freshly fetched OAuth 2.0 token: check the client's permissions at the target)"
              : permanent
                ? ' (not retried: fix the event, the mapping or the sink, then replay from the dead-letter stream)'
                : ''
          }`,
          permanent,
          refusedAgain
            ? FlowErrorCode.SinkAuthRefused
            : permanent
              ? FlowErrorCode.SinkRejected
              : status === 429
                ? FlowErrorCode.SinkThrottled
                : status === 409
                  ? FlowErrorCode.SinkConflict
                  : FlowErrorCode.SinkUnavailable,
          { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
        );
      } finally {
        release();
      }
    },
    async close() {
      closing.abort();
      await auth?.close().catch(() => {});
      await agent.close().catch(() => {});
    },
  };

  /** The captured id and the event's other ids, under the event's business key. */
  async function record(entity: string, event: EventHead, id: string, data: unknown): Promise<void> {
    const links = await capture!.links(data);
    await store!.link({
      entity,
      key: event.subject,
      ids: { ...links, [xrefConfig!.system]: id },
      provenance: {
        version: event.tallyversion,
        by: options.flow ?? event.tallyflow,
        at: new Date().toISOString(),
      },
    });
  }
}
