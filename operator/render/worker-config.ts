// Pure: IntegrationFlow + its resolved CanonicalMapping -> the WorkerConfig the worker runs, plus
// the environment variables that carry secrets (as secretKeyRefs, never values).
import type { CanonicalMappingSpec } from '../../api/canonical-mapping.ts';
import { API_VERSION, durationMs } from '../../api/common.ts';
import type { IntegrationFlowSpec } from '../../api/integration-flow.ts';
import type { ReconciliationPolicySpec } from '../../api/reconciliation-policy.ts';
import {
  parseWorkerConfig,
  type ReconWorkerConfig,
  reconWorkerConfigSchema,
  type WorkerConfig,
} from '../../api/worker-config.ts';
import { inboundDefinition, outboundDefinition } from '../../runtime/mapping/definition.ts';
import {
  CANONICAL_SINK_NAME,
  canonicalStreamName,
  canonicalSubject,
  policyFilterSubjects,
  policyNames,
} from '../../runtime/nats/canonical.ts';
import { flowNames } from '../../runtime/nats/flow-resources.ts';
import { xrefBucketName } from '../../runtime/xref/keys.ts';
import { WORKER_HTTP_PORT } from './labels.ts';

export interface SecretEnvVar {
  name: string;
  valueFrom: { secretKeyRef: { name: string; key: string } };
}

export interface WorkerConfigInput {
  namespace: string;
  name: string;
  spec: IntegrationFlowSpec;
  mapping: { name: string; generation: number; spec: CanonicalMappingSpec };
  /** Lookup tables by name, ConfigMap-backed ones already read. */
  lookups: Record<string, { values: Record<string, string>; default?: string }>;
  /** The outbound mappings the sinks reference (bodyMappingRef), by name. */
  outboundMappings?: ReadonlyMap<string, ResolvedOutboundMapping>;
  natsServers: string[];
}

type SecretRef = { name: string; key: string };

type AuthSpec = NonNullable<Extract<IntegrationFlowSpec['sinks'][number]['http'], object>['auth']>;

/** An outbound CanonicalMapping a sink references, with its lookup tables resolved. */
export interface ResolvedOutboundMapping {
  name: string;
  generation: number;
  spec: CanonicalMappingSpec;
  lookups: Record<string, { values: Record<string, string>; default?: string }>;
}

export function renderWorkerConfig(input: WorkerConfigInput): { config: WorkerConfig; env: SecretEnvVar[] } {
  const env: SecretEnvVar[] = [];
  const secret = (envName: string, ref: SecretRef) => {
    env.push({ name: envName, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } });
    return { env: envName };
  };
  const auth = (prefix: string, a: AuthSpec | undefined) =>
    a && {
      type: a.type,
      ...(a.tokenSecretRef ? { token: secret(`${prefix}_TOKEN`, a.tokenSecretRef) } : {}),
      ...(a.usernameSecretRef ? { username: secret(`${prefix}_USERNAME`, a.usernameSecretRef) } : {}),
      ...(a.passwordSecretRef ? { password: secret(`${prefix}_PASSWORD`, a.passwordSecretRef) } : {}),
      ...(a.header ? { header: a.header } : {}),
      ...(a.tokenUrl ? { tokenUrl: a.tokenUrl } : {}),
      ...(a.clientIdSecretRef ? { clientId: secret(`${prefix}_CLIENT_ID`, a.clientIdSecretRef) } : {}),
      ...(a.clientSecretSecretRef
        ? { clientSecret: secret(`${prefix}_CLIENT_SECRET`, a.clientSecretSecretRef) }
        : {}),
      ...(a.scope ? { scope: a.scope } : {}),
      ...(a.type === 'oauth2ClientCredentials' ? { clientAuth: a.clientAuth } : {}),
    };

  const { spec } = input;
  const names = flowNames(input);
  const src = spec.source;
  let source: WorkerConfig['source'];
  if (src.type === 'webhook' && src.webhook) {
    const sig = src.webhook.signature;
    source = {
      type: 'webhook',
      path: src.webhook.path,
      maxBodyBytes: src.webhook.maxBodyBytes,
      signature: {
        scheme: sig.scheme,
        header:
          sig.header ?? (sig.scheme === 'shopify-hmac-sha256' ? 'X-Shopify-Hmac-Sha256' : 'X-Signature'),
        ...(sig.secretKeyRef ? { secret: secret('TALLY_WEBHOOK_SECRET', sig.secretKeyRef) } : {}),
        ...(sig.timestampHeader ? { timestampHeader: sig.timestampHeader } : {}),
        toleranceMs: durationMs(sig.tolerance),
      },
    };
  } else if (src.type === 'httpPoll' && src.httpPoll) {
    const { auth: pollAuth, ...poll } = src.httpPoll;
    const a = auth('TALLY_SOURCE', pollAuth);
    source = { type: 'httpPoll', poll, ...(a ? { auth: a } : {}) };
  } else if (src.type === 'nats' && src.nats) {
    source = { type: 'nats', subject: src.nats.subject };
  } else {
    source = { type: 'batch', format: src.batch?.format ?? 'jsonl' };
  }

  const sinks: WorkerConfig['sinks'] = spec.sinks.map((s, i) => {
    if (s.type === 'http' && s.http) {
      const h = s.http;
      const a = auth(`TALLY_SINK_${i}`, h.auth);
      const outbound = h.bodyMappingRef ? input.outboundMappings?.get(h.bodyMappingRef.name) : undefined;
      if (h.bodyMappingRef && !outbound) {
        throw new Error(`sink ${s.name}: outbound mapping ${h.bodyMappingRef.name} was not resolved`);
      }
      return {
        name: s.name,
        type: 'http' as const,
        url: h.url,
        method: h.method,
        ...(outbound
          ? {
              bodyMapping: outboundDefinition(
                `${input.namespace}/${outbound.name}`,
                outbound.generation,
                outbound.spec,
                outbound.lookups,
              ),
            }
          : {}),
        ...(h.update ? { update: { url: h.update.url ?? h.url, method: h.update.method } } : {}),
        ...(h.xref
          ? {
              xref: {
                system: h.xref.system,
                entity: h.xref.entity ?? spec.entity,
                ...(h.xref.capture ? { capture: h.xref.capture } : {}),
                links: h.xref.links ?? {},
              },
            }
          : {}),
        ...(h.alreadyExists
          ? {
              alreadyExists: {
                statuses: h.alreadyExists.statuses,
                ...(h.alreadyExists.bodyPattern ? { bodyPattern: h.alreadyExists.bodyPattern } : {}),
              },
            }
          : {}),
        headers: h.headers ?? {},
        ...(a ? { auth: a } : {}),
        idempotencyKeyHeader: h.idempotencyKeyHeader,
        timeoutMs: durationMs(h.timeout),
        maxInFlight: h.maxInFlight,
        ...(h.rateLimit
          ? {
              rateLimit: {
                requestsPerSecond: h.rateLimit.requestsPerSecond,
                burst: h.rateLimit.burst ?? h.rateLimit.requestsPerSecond,
              },
            }
          : {}),
        ...(h.circuitBreaker
          ? {
              circuitBreaker: {
                failureThreshold: h.circuitBreaker.failureThreshold,
                coolDownMs: durationMs(h.circuitBreaker.coolDown),
              },
            }
          : {}),
      };
    }
    if (s.type === 'masterData') {
      return {
        name: s.name,
        type: 'masterData' as const,
        entity: spec.entity,
        links: s.masterData?.links ?? {},
      };
    }
    return { name: s.name, type: 'nats' as const, subject: s.nats?.subject ?? '' };
  });
  // Every flow also feeds the namespace's canonical stream, where reconciliation policies read.
  sinks.push({
    name: CANONICAL_SINK_NAME,
    type: 'nats',
    subject: canonicalSubject(input.namespace, spec.entity, spec.channel),
  });

  const m = input.mapping;
  const config = parseWorkerConfig({
    apiVersion: API_VERSION,
    kind: 'WorkerConfig',
    role: 'flow',
    flow: { namespace: input.namespace, name: input.name, channel: spec.channel, entity: spec.entity },
    nats: {
      servers: input.natsServers,
      stream: names.stream,
      ingestSubject: names.ingestSubject(0),
      consumer: names.consumer,
      deadLetterSubject: names.deadLetterSubject,
      deadLetterStream: names.deadLetterStream,
      stateBucket: names.stateBucket,
      xrefBucket: xrefBucketName(input.namespace),
    },
    source,
    mapping: inboundDefinition(`${input.namespace}/${m.name}`, m.generation, m.spec, input.lookups),
    sinks,
    delivery: spec.delivery,
    stream: spec.stream,
    http: { port: WORKER_HTTP_PORT },
  });
  return { config, env };
}

export interface PolicyConfigInput {
  namespace: string;
  name: string;
  spec: ReconciliationPolicySpec;
  natsServers: string[];
}

export function renderPolicyWorkerConfig(input: PolicyConfigInput): ReconWorkerConfig {
  const names = policyNames(input.namespace, input.name);
  return reconWorkerConfigSchema.parse({
    apiVersion: API_VERSION,
    kind: 'WorkerConfig',
    role: 'reconciliation',
    policy: { namespace: input.namespace, name: input.name },
    spec: input.spec,
    nats: {
      servers: input.natsServers,
      canonicalStream: canonicalStreamName(input.namespace),
      filterSubjects: policyFilterSubjects(input.namespace, input.spec),
      stateBucket: names.stateBucket,
      exceptionsSubject: input.spec.exceptions.subject ?? names.exceptionsSubject,
      reportsSubject: names.reportsSubject,
    },
    http: { port: WORKER_HTTP_PORT },
  });
}
