// Credentials for HTTP requests, read once from the environment at startup.
import type { FlowWorkerConfig } from '../../../api/worker-config.ts';
import { type Env, requireEnv } from '../secrets.ts';

type HttpSinkConfig = Extract<FlowWorkerConfig['sinks'][number], { type: 'http' }>;
export type HttpAuthConfig = NonNullable<HttpSinkConfig['auth']>;

/** The header carrying the credentials, e.g. ["Authorization", "Bearer ..."]. */
export function authHeader(auth: HttpAuthConfig, env: Env, what: string): [string, string] {
  const need = (ref: { env: string } | undefined, field: string): string => {
    if (!ref) throw new Error(`${what}: auth.${field} is required for auth type ${auth.type}`);
    return requireEnv(env, ref.env, `${what} auth ${field}`);
  };
  switch (auth.type) {
    case 'bearer':
      return ['Authorization', `Bearer ${need(auth.token, 'token')}`];
    case 'basic': {
      const user = need(auth.username, 'username');
      const pass = need(auth.password, 'password');
      return ['Authorization', `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`];
    }
    case 'apiKey':
      return [auth.header ?? 'X-API-Key', need(auth.token, 'token')];
  }
}
