// IntegrationFlow: one business stream from a source system through a mapping to sinks.
import { z } from 'zod';
import { CANONICAL_ENTITIES } from './canonical/index.ts';
import {
  API_VERSION,
  type CrossFieldRule,
  deletionPolicy,
  duration,
  durationMs,
  identifier,
  objectMetaSchema,
  objectName,
  resourceRequirements,
  secretKeyRef,
  statusBase,
  withRules,
} from './common.ts';

const httpUrl = () =>
  z
    .string()
    .max(2048)
    .regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL')
    .describe('An http:// or https:// URL.');

/**
 * Userinfo in a URL (`https://user:pass@host/...`): everything between the scheme and the first
 * `/`, `?` or `#` that contains an `@`. Credentials there end up in plain text in the resource, the
 * worker's ConfigMap and every error message naming the URL; they belong in a Secret (`auth`).
 */
export const URL_USERINFO = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*@/;
const URL_USERINFO_CEL = "'^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@'";

/** True when `url` carries userinfo (see URL_USERINFO). */
export function urlHasCredentials(url: string | undefined): boolean {
  return url !== undefined && URL_USERINFO.test(url);
}

/** Why userinfo is refused and where the credentials go instead (`auth` = the auth field's path). */
export function urlCredentialsMessage(auth = 'auth'): string {
  return `must not carry credentials (user:password@host): URLs are stored in plain text in the resource and the worker config and appear in logs and errors; put them in a Secret and reference it from ${auth} (basic: usernameSecretRef and passwordSecretRef; bearer or apiKey: tokenSecretRef; oauth2ClientCredentials: clientIdSecretRef and clientSecretSecretRef)`;
}

/** The message of every URL-credentials rule of the schema (the apiserver's and zod's). */
export const URL_CREDENTIALS_MESSAGE = urlCredentialsMessage();

/** A rule refusing userinfo in the URL field `path` (relative to the object the rule sits on). */
function noUrlCredentials<T>(path: string, get: (value: T) => string | undefined): CrossFieldRule<T> {
  const parts = path.split('.');
  const guards = parts.map((_, i) => `has(self.${parts.slice(0, i + 1).join('.')})`);
  return {
    cel: `!(${guards.join(' && ')}) || !self.${path}.matches(${URL_USERINFO_CEL})`,
    message: URL_CREDENTIALS_MESSAGE,
    field: path,
    reason: 'FieldValueForbidden',
    check: (v) => !urlHasCredentials(get(v)),
  };
}

export const webhookSignatureSchema = withRules(
  z
    .object({
      scheme: z
        .enum(['shopify-hmac-sha256', 'hmac-sha256-hex', 'none'])
        .describe(
          'How requests are signed: shopify-hmac-sha256 (base64 HMAC-SHA256 of the raw body), hmac-sha256-hex (hex HMAC-SHA256 with an optional timestamp), or none (no verification; for trusted networks only).',
        ),
      header: z
        .string()
        .max(128)
        .optional()
        .describe(
          'Header carrying the signature. Defaults: X-Shopify-Hmac-Sha256 for shopify-hmac-sha256, X-Signature for hmac-sha256-hex.',
        ),
      secretKeyRef: secretKeyRef().optional().describe('Secret key holding the shared signing secret.'),
      timestampHeader: z
        .string()
        .max(128)
        .optional()
        .describe(
          'Header with the Unix timestamp that is signed together with the body (hmac-sha256-hex only), to reject replays.',
        ),
      tolerance: duration()
        .default('5m')
        .describe(
          'How far the signed timestamp may be from the worker clock before a request is rejected as a replay. At most stream.duplicateWindow (within it a replayed request is dropped as a duplicate).',
        ),
    })
    .strict()
    .describe('Signature verification of incoming webhook requests.'),
  [
    {
      cel: "self.scheme == 'none' || has(self.secretKeyRef)",
      message: 'secretKeyRef is required unless scheme is none',
      field: 'secretKeyRef',
      reason: 'FieldValueRequired',
      check: (s) => s.scheme === 'none' || s.secretKeyRef !== undefined,
    },
    {
      cel: "!has(self.timestampHeader) || self.scheme == 'hmac-sha256-hex'",
      message: 'timestampHeader is only supported with scheme hmac-sha256-hex',
      field: 'timestampHeader',
      check: (s) => s.timestampHeader === undefined || s.scheme === 'hmac-sha256-hex',
    },
  ],
);

export const webhookSourceSchema = z
  .object({
    path: z
      .string()
      .max(256)
      .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'must be an absolute URL path such as "/webhooks/orders"')
      .default('/webhook')
      .describe('URL path the worker listens on for this webhook.'),
    signature: webhookSignatureSchema,
    maxBodyBytes: z
      .number()
      .int()
      .min(1)
      .max(16 * 1024 * 1024)
      .default(1024 * 1024)
      .describe('Largest request body accepted; larger requests get 413 and are never published.'),
  })
  .strict()
  .describe('Receive events as signed HTTP POST requests (e.g. Shopify order webhooks).');

export const AUTH_TYPES = ['bearer', 'basic', 'apiKey', 'oauth2ClientCredentials'] as const;

export const httpAuthSchema = withRules(
  z
    .object({
      type: z
        .enum(AUTH_TYPES)
        .describe(
          'bearer token, basic user/password, an API key header, or OAuth 2.0 client credentials (token fetched from tokenUrl, cached until it expires, fetched again once when the target answers 401).',
        ),
      tokenSecretRef: secretKeyRef().optional().describe('Bearer token or API key (bearer, apiKey).'),
      usernameSecretRef: secretKeyRef().optional().describe('User name (basic).'),
      passwordSecretRef: secretKeyRef().optional().describe('Password (basic).'),
      header: z
        .string()
        .max(128)
        .optional()
        .describe('Header for the API key (apiKey); default X-API-Key. E.g. X-Shopify-Access-Token.'),
      tokenUrl: httpUrl().optional().describe('OAuth 2.0 token endpoint (oauth2ClientCredentials).'),
      clientIdSecretRef: secretKeyRef().optional().describe('OAuth 2.0 client id (oauth2ClientCredentials).'),
      clientSecretSecretRef: secretKeyRef()
        .optional()
        .describe('OAuth 2.0 client secret (oauth2ClientCredentials).'),
      scope: z.string().max(1024).optional().describe('OAuth 2.0 scope, space-separated (optional).'),
      clientAuth: z
        .enum(['basic', 'body'])
        .default('basic')
        .describe(
          'How the client authenticates to the token endpoint: HTTP Basic (RFC 6749 2.3.1) or client_id/client_secret form fields.',
        ),
    })
    .strict()
    .describe('Credentials sent with each request, read from Secrets.'),
  [
    {
      cel: "self.type == 'basic' ? (has(self.usernameSecretRef) && has(self.passwordSecretRef)) : self.type == 'oauth2ClientCredentials' ? (has(self.tokenUrl) && has(self.clientIdSecretRef) && has(self.clientSecretSecretRef)) : has(self.tokenSecretRef)",
      message:
        'basic auth needs usernameSecretRef and passwordSecretRef; oauth2ClientCredentials needs tokenUrl, clientIdSecretRef and clientSecretSecretRef; bearer and apiKey need tokenSecretRef',
      check: (a) =>
        a.type === 'basic'
          ? a.usernameSecretRef !== undefined && a.passwordSecretRef !== undefined
          : a.type === 'oauth2ClientCredentials'
            ? a.tokenUrl !== undefined &&
              a.clientIdSecretRef !== undefined &&
              a.clientSecretSecretRef !== undefined
            : a.tokenSecretRef !== undefined,
    },
    noUrlCredentials('tokenUrl', (a) => a.tokenUrl),
  ],
);

export const httpPollSourceSchema = z
  .object({
    url: httpUrl().describe('Endpoint listing records, e.g. https://erp.example.com/api/orders.'),
    interval: duration().default('60s').describe('Time between polls.'),
    auth: httpAuthSchema.optional(),
    cursor: z
      .object({
        param: z.string().max(128).describe('Query parameter carrying the cursor, e.g. updated_since.'),
        field: z
          .string()
          .max(256)
          .describe(
            'JSONata path into each record giving its cursor value, e.g. updatedAt; the largest seen is kept.',
          ),
        initial: z.string().max(256).optional().describe('Cursor value for the very first poll.'),
      })
      .strict()
      .optional()
      .describe('Updated-since watermark kept in JetStream KV so a restart resumes where it stopped.'),
    pagination: z
      .object({
        type: z
          .enum(['none', 'linkHeader', 'nextToken', 'pageNumber'])
          .default('none')
          .describe('How the API pages: RFC 8288 Link rel=next header, a next-token field, or page numbers.'),
        tokenField: z
          .string()
          .max(256)
          .optional()
          .describe('Response field with the next token (nextToken).'),
        tokenParam: z.string().max(128).optional().describe('Query parameter taking the token (nextToken).'),
        pageParam: z
          .string()
          .max(128)
          .optional()
          .describe('Query parameter with the page number (pageNumber).'),
      })
      .strict()
      .optional()
      .describe('Pagination of the listing.'),
    recordsField: z
      .string()
      .max(256)
      .optional()
      .describe('JSONata path to the array of records in a response body; the body itself when absent.'),
  })
  .strict()
  .describe('Poll a REST API for new or changed records.');

export const natsSourceSchema = z
  .object({
    subject: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[^\s]+$/, 'must be a NATS subject without spaces')
      .describe('NATS subject to subscribe to; wildcards allowed.'),
  })
  .strict()
  .describe('Take events published on a NATS subject.');

export const batchSourceSchema = z
  .object({
    format: z.enum(['csv', 'jsonl']).describe('File format: CSV with a header row, or JSON lines.'),
  })
  .strict()
  .describe('Accept batch files loaded with `tally backfill`.');

const SOURCE_TYPES = ['webhook', 'httpPoll', 'nats', 'batch'] as const;

export const sourceSchema = withRules(
  z
    .object({
      type: z
        .enum(SOURCE_TYPES)
        .describe('Which kind of source this is; the field of the same name configures it.'),
      webhook: webhookSourceSchema.optional(),
      httpPoll: httpPollSourceSchema.optional(),
      nats: natsSourceSchema.optional(),
      batch: batchSourceSchema.optional(),
    })
    .strict()
    .describe('Where the flow gets its events.'),
  [
    ...SOURCE_TYPES.map((t) => ({
      cel: `has(self.${t}) == (self.type == '${t}')`,
      message: `source.${t} must be set when source.type is ${t}, and only then`,
      field: t,
      check: (s: { type: string } & Record<string, unknown>) => (s[t] !== undefined) === (s.type === t),
    })),
    noUrlCredentials<{ httpPoll?: { url: string } }>('httpPoll.url', (s) => s.httpPoll?.url),
  ],
);

/**
 * A URL whose path and query may hold {name} placeholders filled per event (values URL-encoded).
 * The scheme and host are fixed: an event must never choose where its credentials are sent.
 */
const urlTemplate = (what: string) =>
  z
    .string()
    .max(2048)
    .regex(
      /^https?:\/\/[^\s/{}?#]+(\/[^\s]*)?$/,
      'must be an http:// or https:// URL; {placeholders} may appear only in the path and query, never in the host',
    )
    .describe(what);

/** A {name} placeholder of a sink URL template (a field path or an outbound mapping param). */
export const URL_PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_.]*)\}/g;

/** The placeholder names of a URL template, in order. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(URL_PLACEHOLDER)].map((m) => m[1]!);
}

export const HTTP_SINK_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;

export const httpSinkXrefSchema = z
  .object({
    system: identifier().describe(
      'The name of the target system in the cross-reference store, e.g. netsuite or shopify.',
    ),
    entity: z
      .enum(CANONICAL_ENTITIES)
      .optional()
      .describe('The entity whose ids are recorded; default the flow entity.'),
    capture: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe(
        'JSONata over {status, headers, body, event} of the target\'s answer giving the id it assigned, e.g. $substringAfter(headers.location, "/salesOrder/") or body.fulfillment.id. Stored with the event\'s business key; an answer without it is dead-lettered as capture_missing.',
      ),
    links: z
      .record(identifier(), z.string().min(1).max(4096))
      .optional()
      .describe(
        'Other ids of the same business object to record, each a JSONata expression over the canonical event, e.g. {shopify: \'$substringAfter(orderId, "shopify-")\'}.',
      ),
  })
  .strict()
  .describe(
    'Cross-reference: how this sink finds the id the target already has for an event (to update instead of create) and records the id the target assigns.',
  );

export const httpSinkSchema = withRules(
  z
    .object({
      url: urlTemplate(
        'Endpoint receiving each event; {name} placeholders in the path or query are filled from the outbound mapping params, else from fields of the canonical event (e.g. /orders/{orderId}), URL-encoded.',
      ),
      method: z
        .enum(HTTP_SINK_METHODS)
        .default('POST')
        .describe('HTTP method of a create (or of every request).'),
      bodyMappingRef: z
        .object({
          name: objectName().describe('Name of an outbound CanonicalMapping in the same namespace.'),
        })
        .strict()
        .optional()
        .describe(
          "Outbound mapping turning the canonical event into the target's own request body, headers and URL values. Absent: the CloudEvent itself is sent as JSON.",
        ),
      update: z
        .object({
          url: urlTemplate(
            "Endpoint of an update; {id} is the target's id from the cross-reference store. Default: url.",
          ).optional(),
          method: z.enum(HTTP_SINK_METHODS).default('PATCH').describe('HTTP method of an update.'),
        })
        .strict()
        .optional()
        .describe(
          "When the cross-reference store already holds the target's id for this event: send an update here instead of a create. Absent: an event whose target id is known is delivered already and not sent again.",
        ),
      xref: httpSinkXrefSchema.optional(),
      alreadyExists: z
        .object({
          statuses: z
            .array(z.number().int().min(400).max(499))
            .max(8)
            .default([409])
            .describe('Statuses meaning "this already exists" for a create.'),
          bodyPattern: z
            .string()
            .max(512)
            .optional()
            .describe(
              'Regular expression the answer body must match as well (e.g. DUP_RECORD), for targets that answer 400 to duplicates.',
            ),
        })
        .strict()
        .optional()
        .describe(
          'A create answered this way is delivered, not failed, when its id is known or can be captured from the answer (xref.capture runs on it).',
        ),
      headers: z
        .record(z.string(), z.string())
        .optional()
        .describe('Extra non-secret headers sent with each request.'),
      auth: httpAuthSchema.optional(),
      idempotencyKeyHeader: z
        .string()
        .max(128)
        .default('Idempotency-Key')
        .describe('Header carrying the idempotency key derived from the business key and version.'),
      timeout: duration().default('10s').describe('Timeout of one request.'),
      maxInFlight: z.number().int().min(1).max(1024).default(16).describe('Most requests in flight at once.'),
      rateLimit: z
        .object({
          requestsPerSecond: z.number().int().min(1).describe('Sustained requests per second.'),
          burst: z.number().int().min(1).optional().describe('Bucket size; defaults to requestsPerSecond.'),
        })
        .strict()
        .optional()
        .describe('Token-bucket rate limit for this sink.'),
      circuitBreaker: z
        .object({
          failureThreshold: z
            .number()
            .int()
            .min(1)
            .max(1000)
            .default(5)
            .describe(
              'Consecutive transient failures (5xx, 408, timeouts, network errors) that open the circuit.',
            ),
          coolDown: duration()
            .default('30s')
            .describe(
              'How long the circuit stays open (events wait, the sink is not called) before one probe request is let through.',
            ),
        })
        .strict()
        .optional()
        .describe(
          'Circuit breaker: after failureThreshold consecutive transient failures the sink is left alone for coolDown; events wait and are not dead-lettered meanwhile. Defaults apply when absent.',
        ),
    })
    .strict()
    .describe('Deliver to an HTTP endpoint (e.g. the ERP order API).'),
  [
    {
      cel: '!has(self.update) || has(self.xref)',
      message: 'update needs xref (the cross-reference store tells whether the target id is known)',
      field: 'xref',
      reason: 'FieldValueRequired',
      check: (h) => h.update === undefined || h.xref !== undefined,
    },
    {
      cel: '!has(self.alreadyExists) || has(self.xref)',
      message: 'alreadyExists needs xref (the id of what already exists must be known or captured)',
      field: 'xref',
      reason: 'FieldValueRequired',
      check: (h) => h.alreadyExists === undefined || h.xref !== undefined,
    },
    noUrlCredentials('url', (h) => h.url),
    noUrlCredentials('update.url', (h) => h.update?.url),
  ],
);

export const natsSinkSchema = z
  .object({
    subject: z
      .string()
      .min(1)
      .max(256)
      .regex(/^[^\s*>]+$/, 'must be a NATS subject without wildcards or spaces')
      .describe(
        'Subject to publish canonical events to (with Nats-Msg-Id dedupe when it is a stream subject).',
      ),
  })
  .strict()
  .describe('Publish to a NATS subject.');

export const masterDataSinkSchema = z
  .object({
    links: z
      .record(identifier(), z.string().min(1).max(4096))
      .optional()
      .describe(
        'The ids other systems give this record, each a JSONata expression over the canonical entity, e.g. {shopify: \'channelAccounts[channel="shopify-us"].accountId\'}. Mappings find the record by any of them: $customer("shopify", id).',
      ),
  })
  .strict()
  .describe(
    "Keep each event as master data in the namespace's cross-reference store (Customer and Product flows), where $customer(...) and $product(...) read it. An older version never replaces a newer one.",
  );

const SINK_TYPES = ['http', 'nats', 'masterData'] as const;

export const sinkSchema = withRules(
  z
    .object({
      name: identifier().describe('Name of the sink, unique in the flow; used in metrics and logs.'),
      type: z.enum(SINK_TYPES).describe('Which kind of sink; the field of the same name configures it.'),
      http: httpSinkSchema.optional(),
      nats: natsSinkSchema.optional(),
      masterData: masterDataSinkSchema.optional(),
    })
    .strict()
    .describe('One destination of canonical events.'),
  SINK_TYPES.map((t) => ({
    cel: `has(self.${t}) == (self.type == '${t}')`,
    message: `${t} must be set when type is ${t}, and only then`,
    field: t,
    check: (s: { type: string } & Record<string, unknown>) => (s[t] !== undefined) === (s.type === t),
  })),
);

export const deliverySchema = withRules(
  z
    .object({
      maxDeliver: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(5)
        .describe('Attempts before a message goes to the dead-letter stream.'),
      initialBackoff: duration().default('1s').describe('Delay before the first retry.'),
      maxBackoff: duration()
        .default('5m')
        .describe('Longest delay between retries (exponential backoff with jitter).'),
      ackWait: duration()
        .default('30s')
        .describe('How long a worker may hold a message before it is redelivered.'),
      partitions: z
        .number()
        .int()
        .min(1)
        .max(1024)
        .default(1)
        .describe(
          'Subject partitions for per-key ordering (with partitionKey): events with the same partition key are delivered one at a time, in the order the flow stream stored them; partitions are processed in parallel. Changing it on a running flow needs the drain procedure in docs/delivery.md.',
        ),
      partitionKey: z
        .string()
        .min(1)
        .max(1024)
        .optional()
        .describe(
          'JSONata expression over the raw source payload giving the ordering key, e.g. $string(id). When set, each event goes to partition hash(key) mod partitions and is delivered in order with the other events of its key; when absent, events are delivered in parallel with no ordering guarantee.',
        ),
    })
    .strict()
    .describe('Retries, backoff, dead-lettering and ordering.'),
  [
    {
      cel: '!has(self.partitions) || self.partitions <= 1 || has(self.partitionKey)',
      message: 'partitions > 1 needs a partitionKey (the expression that picks the partition)',
      field: 'partitionKey',
      reason: 'FieldValueRequired',
      check: (d) => d.partitions <= 1 || d.partitionKey !== undefined,
    },
    {
      cel: '!has(self.initialBackoff) || !has(self.maxBackoff) || duration(self.initialBackoff) <= duration(self.maxBackoff)',
      message: 'initialBackoff must not be longer than maxBackoff',
      field: 'initialBackoff',
      check: (d) => durationMs(d.initialBackoff) <= durationMs(d.maxBackoff),
    },
  ],
);

export const streamSettingsSchema = z
  .object({
    replicas: z.number().int().min(1).max(5).default(1).describe('JetStream replicas of the flow stream.'),
    maxAge: duration().default('168h').describe('How long messages are kept in the flow stream.'),
    storage: z.enum(['file', 'memory']).default('file').describe('JetStream storage type.'),
    duplicateWindow: duration()
      .default('5m')
      .describe(
        'Window in which a repeated Nats-Msg-Id is dropped. A webhook source that signs a timestamp needs its signature.tolerance to fit in it (a replay of a signed request is dropped as a duplicate within this window, refused as stale after the tolerance).',
      ),
  })
  .strict()
  .describe('Settings of the flow JetStream stream.');

/** The message of the tolerance rule. */
export const TOLERANCE_MESSAGE =
  'must not be longer than stream.duplicateWindow: a signed request replayed after the duplicate window but within the tolerance would be accepted and delivered again; shorten the tolerance or lengthen stream.duplicateWindow';

export const integrationFlowSpecSchema = withRules(
  z
    .object({
      channel: identifier().describe('The sales channel or source system, e.g. shopify-eu, amazon-us, erp.'),
      entity: z.enum(CANONICAL_ENTITIES).describe('The canonical entity this flow produces.'),
      source: sourceSchema,
      mappingRef: z
        .object({ name: objectName().describe('Name of a CanonicalMapping in the same namespace.') })
        .strict()
        .describe('The CanonicalMapping turning source payloads into the canonical entity.'),
      sinks: z
        .array(sinkSchema)
        .min(1)
        .max(16)
        .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
        .describe('Where canonical events go; every message reaches every sink or the dead-letter stream.'),
      delivery: deliverySchema.prefault({}),
      stream: streamSettingsSchema.prefault({}),
      replicas: z
        .number()
        .int()
        .min(0)
        .max(64)
        .default(1)
        .describe('Worker replicas sharing the durable consumer.'),
      resources: resourceRequirements().optional(),
      suspend: z
        .boolean()
        .default(false)
        .describe('Scale the workers to zero while keeping streams and state.'),
      deletionPolicy: deletionPolicy(),
    })
    .strict()
    .describe('Desired state of an IntegrationFlow.'),
  [
    {
      cel: 'self.sinks.all(s, self.sinks.exists_one(o, o.name == s.name))',
      message: 'sink names must be unique',
      field: 'sinks',
      check: (f) => new Set(f.sinks.map((s) => s.name)).size === f.sinks.length,
    },
    {
      cel: '!has(self.source.webhook) || !has(self.source.webhook.signature.timestampHeader) || !has(self.source.webhook.signature.tolerance) || !has(self.stream) || !has(self.stream.duplicateWindow) || duration(self.source.webhook.signature.tolerance) <= duration(self.stream.duplicateWindow)',
      message: TOLERANCE_MESSAGE,
      field: 'source.webhook.signature.tolerance',
      check: (f) => {
        const sig = f.source.webhook?.signature;
        if (!sig?.timestampHeader) return true;
        return durationMs(sig.tolerance) <= durationMs(f.stream.duplicateWindow);
      },
    },
  ],
);
export type IntegrationFlowSpec = z.output<typeof integrationFlowSpecSchema>;

export const integrationFlowStatusSchema = z
  .object({
    ...statusBase,
    stream: z.string().optional().describe('Name of the flow JetStream stream.'),
    consumer: z.string().optional().describe('Name of the durable consumer the workers share.'),
    deadLetterSubject: z.string().optional().describe('Subject of the dead-letter stream.'),
    configHash: z.string().optional().describe('Hash of the WorkerConfig the workers run.'),
    mappingGeneration: z.number().int().optional().describe('Generation of the CanonicalMapping in use.'),
    replicas: z.number().int().optional().describe('Worker replicas desired.'),
    retiredConsumers: z
      .array(
        z
          .object({
            name: z.string().describe('Consumer name.'),
            pending: z.number().int().describe('Messages it has not delivered yet.'),
            ackPending: z.number().int().describe('Messages delivered but not acknowledged.'),
          })
          .describe('A consumer of a partition that no longer exists.'),
      )
      .optional()
      .describe(
        'Consumers of removed partitions that still hold messages; drain them as docs/delivery.md describes.',
      ),
  })
  .describe('Observed state of an IntegrationFlow, written by the operator.');

export const integrationFlowSchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('IntegrationFlow'),
    metadata: objectMetaSchema,
    spec: integrationFlowSpecSchema,
    status: integrationFlowStatusSchema.optional(),
  })
  .describe('IntegrationFlow');
export type IntegrationFlow = z.output<typeof integrationFlowSchema>;
