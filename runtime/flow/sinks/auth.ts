// Credentials for HTTP requests, read once from the environment at startup. Static ones (bearer,
// basic, API key) are one header; OAuth 2.0 client credentials fetch a token (./oauth2.ts), cached
// until it expires and fetched again once when the target refuses it with 401.
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import { type Env, requireEnv } from '../secrets.ts';
import { createTokenProvider, type TokenProvider } from './oauth2.ts';

type HttpSinkConfig = Extract<FlowWorkerConfig['sinks'][number], { type: 'http' }>;
export type HttpAuthConfig = NonNullable<HttpSinkConfig['auth']>;

function need(auth: HttpAuthConfig, env: Env, what: string, ref: { env: string } | undefined, field: string) {
  if (!ref) throw new Error(`${what}: auth.${field} is required for auth type ${auth.type}`);
  return requireEnv(env, ref.env, `${what} auth ${field}`);
}

/** The header carrying static credentials, e.g. ["Authorization", "Bearer ..."]. */
export function authHeader(auth: HttpAuthConfig, env: Env, what: string): [string, string] {
  switch (auth.type) {
    case 'bearer':
      return ['Authorization', `Bearer ${need(auth, env, what, auth.token, 'token')}`];
    case 'basic': {
      const user = need(auth, env, what, auth.username, 'username');
      const pass = need(auth, env, what, auth.password, 'password');
      return ['Authorization', `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`];
    }
    case 'apiKey':
      return [auth.header ?? 'X-API-Key', need(auth, env, what, auth.token, 'token')];
    case 'oauth2ClientCredentials':
      throw new Error(
        `${what}: auth type oauth2ClientCredentials is supported on HTTP sinks, not yet on httpPoll sources: use bearer, basic or apiKey here`,
      );
  }
}

/** Credentials of one sink: the header for the next request, and what to do when it is refused. */
export interface RequestAuth {
  header(): Promise<[string, string]>;
  /** The target answered 401 to `header`: true when asking again with a new token may help. */
  refused(header: [string, string]): boolean;
  close(): Promise<void>;
}

export function requestAuth(auth: HttpAuthConfig, env: Env, what: string): RequestAuth {
  if (auth.type !== 'oauth2ClientCredentials') {
    const fixed = authHeader(auth, env, what);
    return { header: async () => fixed, refused: () => false, close: async () => {} };
  }
  if (!auth.tokenUrl) throw new Error(`${what}: auth.tokenUrl is required for oauth2ClientCredentials`);
  const provider: TokenProvider = createTokenProvider({
    tokenUrl: auth.tokenUrl,
    clientId: need(auth, env, what, auth.clientId, 'clientId'),
    clientSecret: need(auth, env, what, auth.clientSecret, 'clientSecret'),
    ...(auth.scope ? { scope: auth.scope } : {}),
    clientAuth: auth.clientAuth ?? 'basic',
  });
  const prefix = 'Bearer ';
  return {
    header: async () => ['Authorization', `${prefix}${await provider.token()}`],
    refused: ([, value]) => provider.invalidate(value.slice(prefix.length)),
    close: () => provider.close(),
  };
}
