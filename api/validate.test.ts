// Offline validation of the rules that keep credentials out of URLs and replays out of flows.
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import {
  integrationFlowSpecSchema,
  TOLERANCE_MESSAGE,
  URL_CREDENTIALS_MESSAGE,
  urlHasCredentials,
} from './integration-flow.ts';
import { type SourceDocument, validateDocuments } from './validate.ts';

const example = (file: string) =>
  yaml.load(readFileSync(new URL(`../examples/${file}`, import.meta.url), 'utf8')) as {
    spec: Record<string, unknown> & {
      sinks: { http?: Record<string, unknown> }[];
      source: Record<string, unknown>;
    };
  };

function flowDoc(
  edit: (spec: ReturnType<typeof example>['spec']) => void,
  file = 'shopify-orders/flow.yaml',
) {
  const doc = example(file);
  edit(doc.spec);
  return doc;
}

/** The problems of one flow document, without those of references (its mappings are not given). */
function problems(doc: unknown) {
  const docs: SourceDocument[] = [{ file: 'flow.yaml', index: 1, doc }];
  return validateDocuments(docs).problems.filter(
    (p) => !/^(refers to CanonicalMapping|names \{)/.test(p.message),
  );
}

describe('URLs with credentials', () => {
  it('are recognised by their userinfo, whatever it holds', () => {
    for (const url of [
      'https://user:pass@erp.example.com/orders',
      'https://token@erp.example.com',
      'http://a@b@erp.example.com:8080/x',
      'https://erp.example.com\\@evil.example/', // a backslash ends the host in browsers: refused too
    ]) {
      expect(urlHasCredentials(url), url).toBe(true);
    }
    for (const url of [
      'https://erp.example.com/orders',
      'https://erp.example.com/orders?email=a@b.example',
      'https://erp.example.com/users/@me',
      'https://erp.example.com/x#a@b',
    ]) {
      expect(urlHasCredentials(url), url).toBe(false);
    }
  });

  it('are refused in a sink URL, an update URL and a token URL, naming the auth field to use', () => {
    const doc = flowDoc((spec) => {
      const http = spec.sinks[0]!.http!;
      http.url = 'https://tally:s3cr3t@erp.example.com/api/sales-orders';
      http.xref = { system: 'erp' };
      http.update = { url: 'https://tally:s3cr3t@erp.example.com/api/sales-orders/{id}' };
      http.auth = {
        type: 'oauth2ClientCredentials',
        tokenUrl: 'https://client:secret@erp.example.com/token',
        clientIdSecretRef: { name: 'erp', key: 'id' },
        clientSecretSecretRef: { name: 'erp', key: 'secret' },
      };
    });
    const found = problems(doc);
    expect(found.map((p) => p.path)).toEqual([
      'spec.sinks[0].http.url',
      'spec.sinks[0].http.update.url',
      'spec.sinks[0].http.auth.tokenUrl',
    ]);
    for (const p of found) {
      expect(p.message).toMatch(/^must not carry credentials \(user:password@host\)/);
      expect(p.message).toContain(
        'reference it from spec.sinks[0].http.auth (basic: usernameSecretRef and passwordSecretRef',
      );
      expect(p.message).not.toMatch(/s3cr3t|secret@/);
    }
  });

  it('are refused in an httpPoll source URL, also when other fields are invalid', () => {
    const doc = flowDoc((spec) => {
      spec.source = {
        type: 'httpPoll',
        httpPoll: { url: 'https://user:pw@erp.example.com/api/orders', interval: 'soon' },
      };
    });
    const found = problems(doc);
    expect(found).toContainEqual(
      expect.objectContaining({
        path: 'spec.source.httpPoll.url',
        message: expect.stringContaining('reference it from spec.source.httpPoll.auth'),
      }),
    );
    expect(found.find((p) => p.path === 'spec.source.httpPoll.interval')).toBeDefined();
    // One line per problem: the schema's own rule is not reported a second time.
    expect(found.filter((p) => p.path === 'spec.source.httpPoll.url')).toHaveLength(1);
  });

  it('are refused by the schema itself (the rule the CRD carries as CEL)', () => {
    const spec = flowDoc((s) => {
      s.sinks[0]!.http!.url = 'https://u:p@erp.example.com/orders';
    }).spec;
    const result = integrationFlowSpecSchema.safeParse(spec);
    expect(result.success).toBe(false);
    expect(result.error!.issues).toEqual([
      expect.objectContaining({ path: ['sinks', 0, 'http', 'url'], message: URL_CREDENTIALS_MESSAGE }),
    ]);
  });
});

describe('webhook signature tolerance', () => {
  const timestamped = 'netsuite-round-trip/netsuite-shipments.yaml';

  it('may not be longer than the duplicate window when a timestamp is signed', () => {
    const doc = flowDoc((spec) => {
      (spec.source.webhook as { signature: Record<string, unknown> }).signature.tolerance = '10m';
      spec.stream = { duplicateWindow: '5m' };
    }, timestamped);
    expect(problems(doc)).toEqual([
      expect.objectContaining({
        path: 'spec.source.webhook.signature.tolerance',
        message: TOLERANCE_MESSAGE,
      }),
    ]);
    const shorterWindow = flowDoc((spec) => {
      spec.stream = { duplicateWindow: '2m' }; // the default tolerance is 5m
    }, timestamped);
    expect(problems(shorterWindow).map((p) => p.path)).toEqual(['spec.source.webhook.signature.tolerance']);
  });

  it('fits the defaults, and equal or shorter tolerances', () => {
    expect(problems(example(timestamped))).toEqual([]);
    const equal = flowDoc((spec) => {
      (spec.source.webhook as { signature: Record<string, unknown> }).signature.tolerance = '90s';
      spec.stream = { duplicateWindow: '1m30s' };
    }, timestamped);
    expect(problems(equal)).toEqual([]);
  });

  it('does not matter without a signed timestamp (Shopify): body digests deduplicate those', () => {
    const doc = flowDoc((spec) => {
      (spec.source.webhook as { signature: Record<string, unknown> }).signature.tolerance = '1h';
      spec.stream = { duplicateWindow: '1m' };
    });
    expect(problems(doc)).toEqual([]);
  });
});
