/**
 * The three parts of undici the HTTP client uses — the Agent, the redirect
 * interceptor and the request API — loaded from their own modules rather
 * than from undici's index, which also loads fetch, WebSocket, cookies,
 * EventSource, caches and mocks (and Node's bundled undici with them):
 * 95 ms of every bootstrap's start-up, measured. The paths are undici's
 * lib/ layout (no `exports` map restricts them); the version is pinned by
 * package-lock.json, and test/bootstrap/http.test.ts exercises all three.
 */
import type { Dispatcher, Agent as AgentType, interceptors as Interceptors } from 'undici';
import AgentImpl from 'undici/lib/dispatcher/agent.js';
import redirectImpl from 'undici/lib/interceptor/redirect.js';
import requestImpl from 'undici/lib/api/api-request.js';

export type { Dispatcher };
export type Agent = AgentType;
export const Agent: typeof AgentType = AgentImpl;
export const redirect: typeof Interceptors.redirect = redirectImpl;

/**
 * undici's `request(url, { dispatcher, … })` (its index wraps the same
 * function this way: origin and path from the URL, `this` the dispatcher).
 *
 * @example
 * const res = await request('http://127.0.0.1:8080/x', { dispatcher: agent, method: 'GET' });
 */
export function request(url: string, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher }): Promise<Dispatcher.ResponseData> {
  const u = new URL(url);
  const { dispatcher, ...rest } = opts;
  return requestImpl.call(dispatcher, { ...rest, origin: u.origin, path: `${u.pathname}${u.search}` });
}
