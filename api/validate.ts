// Offline validation of Tally resources: each document against its schema, then the references
// between the given resources. Pure: callers read the files.
import type { z } from 'zod';
import { type CanonicalEntity, canonicalSchemas } from './canonical/index.ts';
import type { CanonicalMappingSpec } from './canonical-mapping.ts';
import { API_VERSION, DNS_LABEL, GROUP } from './common.ts';
import {
  type IntegrationFlowSpec,
  placeholders,
  URL_CREDENTIALS_MESSAGE,
  urlCredentialsMessage,
  urlHasCredentials,
} from './integration-flow.ts';
import { formatPath as formatValuePath } from './paths.ts';
import { type ResourceDefinition, resourceByKind } from './resources.ts';

export interface SourceDocument {
  file: string;
  /** 1-based position of the document in its file. */
  index: number;
  doc: unknown;
}

export interface Problem {
  file: string;
  document: number;
  kind: string;
  name: string;
  namespace?: string;
  /** Field path such as spec.sinks[0].http.url; empty for the whole resource. */
  path: string;
  message: string;
}

export interface ValidatedResource {
  file: string;
  document: number;
  kind: string;
  name: string;
  namespace?: string;
  valid: boolean;
}

export interface ValidationReport {
  valid: boolean;
  resources: ValidatedResource[];
  /** Documents that are not tally.dev resources (Secrets, ConfigMaps, ...): not checked. */
  skipped: { file: string; document: number; apiVersion: string; kind: string; name: string }[];
  problems: Problem[];
  /**
   * What is allowed but probably a mistake (a mapping without test cases). Warnings do not make the
   * report invalid; `tally validate --strict` fails on them too.
   */
  warnings: Problem[];
}

/** Field paths of a resource: the whole resource is the empty path. */
export function formatPath(path: readonly PropertyKey[]): string {
  return formatValuePath(path, '');
}

/** Turn a zod issue into "what is wrong and what is expected". */
export function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined
        ? `is required (expected ${issue.expected})`
        : `has the wrong type: expected ${issue.expected}, got ${typeOf(issue.input)}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}: remove ${issue.keys.length > 1 ? 'them' : 'it'} or check the spelling (kubectl explain shows the fields)`;
    case 'invalid_value':
      return `is ${JSON.stringify(issue.input)}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `needs at least ${issue.minimum} item(s)`
        : issue.origin === 'string'
          ? `must be at least ${issue.minimum} character(s) long`
          : `must be at least ${issue.minimum}`;
    case 'too_big':
      return issue.origin === 'array'
        ? `allows at most ${issue.maximum} item(s)`
        : issue.origin === 'string'
          ? `must be at most ${issue.maximum} characters long`
          : `must be at most ${issue.maximum}`;
    case 'invalid_union':
      return 'does not match any allowed shape';
    default:
      return issue.message;
  }
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function metaOf(doc: unknown): { apiVersion: string; kind: string; name: string; namespace?: string } {
  const d = (doc ?? {}) as Record<string, unknown>;
  const md = (d.metadata ?? {}) as Record<string, unknown>;
  return {
    apiVersion: typeof d.apiVersion === 'string' ? d.apiVersion : '',
    kind: typeof d.kind === 'string' ? d.kind : '',
    name: typeof md.name === 'string' ? md.name : '',
    ...(typeof md.namespace === 'string' ? { namespace: md.namespace } : {}),
  };
}

interface Parsed {
  src: SourceDocument;
  def: ResourceDefinition;
  meta: ReturnType<typeof metaOf>;
  value: Record<string, unknown> | undefined;
}

export function validateDocuments(docs: SourceDocument[], defaultNamespace = 'default'): ValidationReport {
  const report: ValidationReport = { valid: true, resources: [], skipped: [], problems: [], warnings: [] };
  const parsed: Parsed[] = [];
  const entry = (
    p: Parsed | { src: SourceDocument; meta: ReturnType<typeof metaOf> },
    path: string,
    message: string,
  ): Problem => ({
    file: p.src.file,
    document: p.src.index,
    kind: p.meta.kind || '(no kind)',
    name: p.meta.name || '(no name)',
    ...(p.meta.namespace ? { namespace: p.meta.namespace } : {}),
    path,
    message,
  });
  const problem = (
    p: Parsed | { src: SourceDocument; meta: ReturnType<typeof metaOf> },
    path: string,
    message: string,
  ) => report.problems.push(entry(p, path, message));
  const warning = (p: Parsed, path: string, message: string) => report.warnings.push(entry(p, path, message));

  for (const src of docs) {
    if (src.doc === null || src.doc === undefined) continue; // empty YAML document
    const meta = metaOf(src.doc);
    if (typeof src.doc !== 'object' || Array.isArray(src.doc)) {
      problem(
        { src, meta },
        '',
        'is not a Kubernetes object: expected a mapping with apiVersion, kind and metadata',
      );
      continue;
    }
    const group = meta.apiVersion.split('/')[0];
    if (group !== GROUP) {
      report.skipped.push({ file: src.file, document: src.index, ...meta });
      continue;
    }
    const def = resourceByKind(meta.kind);
    if (!def) {
      problem(
        { src, meta },
        'kind',
        `unknown kind "${meta.kind}": expected IntegrationFlow, CanonicalMapping or ReconciliationPolicy`,
      );
      continue;
    }
    const before = report.problems.length;
    if (meta.apiVersion !== API_VERSION) {
      problem({ src, meta }, 'apiVersion', `is "${meta.apiVersion}": expected "${API_VERSION}"`);
    }
    const result = def.object.safeParse(src.doc, { reportInput: true });
    const entry: Parsed = { src, def, meta, value: undefined };
    if (result.success) {
      entry.value = result.data as Record<string, unknown>;
    } else {
      for (const issue of result.error.issues) {
        if (issue.path[0] === 'apiVersion') continue; // reported above, more precisely
        if (issue.message === URL_CREDENTIALS_MESSAGE) continue; // checkUrlCredentials, more precisely
        problem(entry, formatPath(issue.path), describeIssue(issue));
      }
    }
    if (def.maxNameLength < 253 && (meta.name.length > def.maxNameLength || !DNS_LABEL.test(meta.name))) {
      problem(
        entry,
        'metadata.name',
        `is "${meta.name}" (${meta.name.length} characters): ${def.kind} names must be DNS labels of at most ${def.maxNameLength} characters (lowercase letters, digits and '-')`,
      );
    }
    parsed.push(entry);
    report.resources.push({
      file: src.file,
      document: src.index,
      kind: meta.kind,
      name: meta.name,
      ...(meta.namespace ? { namespace: meta.namespace } : {}),
      valid: report.problems.length === before,
    });
  }

  checkDuplicates(parsed, defaultNamespace, problem);
  checkReferences(parsed, defaultNamespace, problem);
  checkSecretHeaders(parsed, problem);
  checkUrlCredentials(parsed, problem);
  checkTestCases(parsed, warning);

  const invalid = new Set(report.problems.map((p) => `${p.file}#${p.document}`));
  for (const r of report.resources) r.valid = !invalid.has(`${r.file}#${r.document}`);
  report.valid = report.problems.length === 0;
  return report;
}

type ProblemFn = (p: Parsed, path: string, message: string) => void;

function checkDuplicates(parsed: Parsed[], ns: string, problem: ProblemFn): void {
  const seen = new Map<string, Parsed>();
  for (const p of parsed) {
    const key = `${p.meta.kind}/${p.meta.namespace ?? ns}/${p.meta.name}`;
    const first = seen.get(key);
    if (first) {
      problem(
        p,
        'metadata.name',
        `duplicates ${p.meta.kind} "${p.meta.name}" defined in ${first.src.file} (document ${first.src.index})`,
      );
    } else {
      seen.set(key, p);
    }
  }
}

function checkReferences(parsed: Parsed[], ns: string, problem: ProblemFn): void {
  const mappings = new Map<string, Parsed>();
  for (const p of parsed) {
    if (p.meta.kind === 'CanonicalMapping') mappings.set(`${p.meta.namespace ?? ns}/${p.meta.name}`, p);
  }
  const known = () => {
    const names = [...mappings.values()].map((m) => m.meta.name);
    return names.length ? names.map((k) => `"${k}"`).join(', ') : '(no CanonicalMapping given)';
  };
  for (const p of parsed) {
    if (p.meta.kind !== 'IntegrationFlow' || !p.value) continue;
    const spec = p.value.spec as IntegrationFlowSpec;
    const namespace = p.meta.namespace ?? ns;
    const refer = (name: string, path: string, direction: 'inbound' | 'outbound') => {
      const target = mappings.get(`${namespace}/${name}`);
      if (!target) {
        problem(
          p,
          path,
          `refers to CanonicalMapping "${name}", which is not among the given files: expected one of ${known()}`,
        );
        return undefined;
      }
      const mspec = target.value?.spec as CanonicalMappingSpec | undefined;
      if (!mspec) return undefined;
      if (mspec.direction !== direction) {
        problem(
          p,
          path,
          `refers to CanonicalMapping "${name}", which is ${mspec.direction}: ${direction === 'inbound' ? "a flow's mappingRef turns source payloads into canonical events (direction inbound)" : "a sink's bodyMappingRef turns canonical events into the target's request (direction outbound)"}`,
        );
        return undefined;
      }
      if (mspec.entity !== spec.entity) {
        problem(
          p,
          direction === 'inbound' ? 'spec.entity' : path,
          direction === 'inbound'
            ? `is ${spec.entity} but CanonicalMapping "${name}" produces ${mspec.entity}: they must agree`
            : `refers to CanonicalMapping "${name}", which reads ${mspec.entity}, but the flow produces ${spec.entity}`,
        );
        return undefined;
      }
      return mspec;
    };
    refer(spec.mappingRef.name, 'spec.mappingRef.name', 'inbound');
    spec.sinks.forEach((sink, i) => {
      const http = sink.http;
      if (!http) return;
      const outbound = http.bodyMappingRef
        ? refer(http.bodyMappingRef.name, `spec.sinks[${i}].http.bodyMappingRef.name`, 'outbound')
        : undefined;
      const params = new Set(Object.keys(outbound?.params ?? {}));
      const fields = canonicalFields(spec.entity);
      const check = (template: string, path: string, extra: string[]) => {
        for (const name of placeholders(template)) {
          if (params.has(name) || extra.includes(name) || fields.has(name.split('.')[0]!)) continue;
          problem(
            p,
            path,
            `names {${name}}, which is neither a param of the outbound mapping${http.bodyMappingRef ? ` "${http.bodyMappingRef.name}"` : ' (the sink has no bodyMappingRef)'} nor a field of ${spec.entity} (${[...fields].join(', ')})`,
          );
        }
      };
      check(http.url, `spec.sinks[${i}].http.url`, []);
      if (http.update?.url) check(http.update.url, `spec.sinks[${i}].http.update.url`, ['id']);
    });
  }
}

/** The top-level fields of a canonical entity (what a URL placeholder may name). */
function canonicalFields(entity: string): Set<string> {
  const schema = canonicalSchemas[entity as CanonicalEntity] as unknown as {
    shape?: Record<string, unknown>;
  };
  return new Set(Object.keys(schema?.shape ?? {}));
}

/** A mapping without test cases is checked by nothing until real payloads reach it. */
function checkTestCases(parsed: Parsed[], warning: ProblemFn): void {
  for (const p of parsed) {
    if (p.meta.kind !== 'CanonicalMapping' || !p.value) continue;
    const spec = p.value.spec as CanonicalMappingSpec;
    if (spec.tests.length > 0) continue;
    warning(
      p,
      'spec.tests',
      'has no test cases, so nothing checks the expression before real payloads reach it: add at least one (a sample input and its expected output; tally mapping test runs them)',
    );
  }
}

/** Header names that carry credentials (lowercase), whatever their value. */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-shopify-access-token',
  'x-amz-access-token',
  'x-amz-security-token',
]);
/** ...-Api-Key, ...-ApiKey, ...-Token, ...-Secret: X-Auth-Token, X-Client-Secret, Ocp-Apim-...-Api-Key. */
const CREDENTIAL_HEADER_SUFFIX = /-(api-?key|token|secret)$/i;
/** Values that are credentials whatever the header: an HTTP auth scheme, or a well-known token format. */
const CREDENTIAL_VALUES: readonly { pattern: RegExp; what: string }[] = [
  { pattern: /^\s*bearer\s+\S{8,}\s*$/i, what: 'a bearer token' },
  { pattern: /^\s*basic\s+[A-Za-z0-9+/]{8,}={0,2}\s*$/i, what: 'HTTP basic credentials' },
  { pattern: /\b(sk|rk)_(live|test)_[0-9A-Za-z]/, what: 'a Stripe secret key' },
  { pattern: /\bshp(at|ca|pa|ss)_[0-9a-fA-F]/, what: 'a Shopify access token' },
  { pattern: /\b(ghp|gho|ghs|github_pat)_[0-9A-Za-z]/, what: 'a GitHub token' },
  { pattern: /\bxox[abprs]-[0-9A-Za-z]/, what: 'a Slack token' },
  { pattern: /\b(AKIA|ASIA)[0-9A-Z]{16}\b/, what: 'an AWS access key' },
  { pattern: /\beyJ[0-9A-Za-z_-]+\.eyJ[0-9A-Za-z_-]+\./, what: 'a JSON Web Token' },
];

/**
 * Why a static header of an HTTP sink looks like a credential, or undefined. Pure, for tests: headers
 * are stored in the IntegrationFlow in plain text (kubectl get shows them, every worker config holds
 * them), so credentials belong in a Secret read through the sink's `auth`.
 */
export function credentialHeaderReason(name: string, value: unknown): string | undefined {
  const lower = name.trim().toLowerCase();
  if (CREDENTIAL_HEADERS.has(lower) || CREDENTIAL_HEADER_SUFFIX.test(lower)) {
    return `${name} is a credential header`;
  }
  if (typeof value !== 'string') return undefined;
  const match = CREDENTIAL_VALUES.find((v) => v.pattern.test(value));
  return match ? `its value looks like ${match.what}` : undefined;
}

/** The `auth` that sends what a credential header carries. */
function authFor(name: string, value: unknown): string {
  const lower = name.trim().toLowerCase();
  const text = typeof value === 'string' ? value.trim() : '';
  const ref = '{ name: <secret>, key: <key> }';
  if (lower === 'authorization' || lower === 'proxy-authorization' || /^(bearer|basic)\s/i.test(text)) {
    if (/^basic\s/i.test(text)) {
      return `auth: { type: basic, usernameSecretRef: ${ref}, passwordSecretRef: ${ref} }`;
    }
    return `auth: { type: bearer, tokenSecretRef: ${ref} }`;
  }
  return `auth: { type: apiKey, header: ${name.trim()}, tokenSecretRef: ${ref} }`;
}

/** HTTP sinks must not carry credentials in `headers`: they are plain text in the resource. */
function checkSecretHeaders(parsed: Parsed[], problem: ProblemFn): void {
  for (const p of parsed) {
    if (p.meta.kind !== 'IntegrationFlow') continue;
    // The document as written: a literal secret is worth reporting even when another field is invalid.
    const spec = (p.src.doc as { spec?: { sinks?: unknown } }).spec;
    const sinks = Array.isArray(spec?.sinks) ? (spec.sinks as unknown[]) : [];
    sinks.forEach((sink, i) => {
      const headers = (sink as { http?: { headers?: unknown } } | null)?.http?.headers;
      if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return;
      for (const [name, value] of Object.entries(headers)) {
        const reason = credentialHeaderReason(name, value);
        if (!reason) continue;
        problem(
          p,
          `spec.sinks[${i}].http.headers.${name}`,
          `must not hold a secret (${reason}): headers are stored in plain text in the IntegrationFlow; put the credential in a Secret and use spec.sinks[${i}].http.auth instead, e.g. ${authFor(name, value)}`,
        );
      }
    });
  }
}

/**
 * URLs must not carry credentials (userinfo, `https://user:pass@host`): the schema refuses them too
 * (so does the apiserver); this reports them on the document as written, even when other fields
 * are invalid, naming the auth field to use instead. The URL itself is never repeated.
 */
function checkUrlCredentials(parsed: Parsed[], problem: ProblemFn): void {
  type Obj = Record<string, unknown> | undefined;
  const obj = (v: unknown): Obj =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  for (const p of parsed) {
    if (p.meta.kind !== 'IntegrationFlow') continue;
    const spec = obj((p.src.doc as { spec?: unknown }).spec);
    const urls: { path: string; url: unknown; auth: string }[] = [];
    const poll = obj(obj(spec?.source)?.httpPoll);
    if (poll) {
      urls.push({ path: 'spec.source.httpPoll.url', url: poll.url, auth: 'spec.source.httpPoll.auth' });
      urls.push({
        path: 'spec.source.httpPoll.auth.tokenUrl',
        url: obj(poll.auth)?.tokenUrl,
        auth: 'spec.source.httpPoll.auth',
      });
    }
    const sinks = Array.isArray(spec?.sinks) ? (spec.sinks as unknown[]) : [];
    sinks.forEach((sink, i) => {
      const http = obj(obj(sink)?.http);
      if (!http) return;
      const auth = `spec.sinks[${i}].http.auth`;
      urls.push({ path: `spec.sinks[${i}].http.url`, url: http.url, auth });
      urls.push({ path: `spec.sinks[${i}].http.update.url`, url: obj(http.update)?.url, auth });
      urls.push({ path: `${auth}.tokenUrl`, url: obj(http.auth)?.tokenUrl, auth });
    });
    for (const u of urls) {
      if (typeof u.url === 'string' && urlHasCredentials(u.url)) {
        problem(p, u.path, urlCredentialsMessage(u.auth));
      }
    }
  }
}
