/**
 * A promise with its resolve and reject at hand: how a package file that
 * lands during the download phase reaches the unpacking that waits for it
 * (both engines).
 */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

/**
 * @example
 * const d = deferred<string>();
 * later(() => d.resolve('/var/cache/nsbox/by-sha256/ab/ab…'));
 * await d.promise;
 */
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => {}); // a rejection nobody waits for (the run failed first) is not an error
  return { promise, resolve, reject };
}
