// Types for the undici modules bootstrap/undici-core.ts loads directly.
declare module 'undici/lib/dispatcher/agent.js' {
  const Agent: typeof import('undici').Agent;
  export default Agent;
}
declare module 'undici/lib/interceptor/redirect.js' {
  const redirect: typeof import('undici').interceptors.redirect;
  export default redirect;
}
declare module 'undici/lib/api/api-request.js' {
  const request: (this: import('undici').Dispatcher, opts: import('undici').Dispatcher.RequestOptions) => Promise<import('undici').Dispatcher.ResponseData>;
  export default request;
}
