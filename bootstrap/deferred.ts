/**
 * Promises settled from outside: a `deferred()` with its resolve and reject
 * at hand (the task list waits on phase events with them), and `Arrivals`,
 * how package files that land during the download phase reach the
 * unpacking that waits for them (both engines).
 */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
  /** Whether resolve or reject was called (later calls do nothing). */
  readonly settled: boolean;
}

/**
 * @example
 * const d = deferred<string>();
 * later(() => d.resolve('/var/cache/nsbox/by-sha256/ab/ab…'));
 * await d.promise;
 */
export function deferred<T>(): Deferred<T> {
  let settled = false;
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => {}); // a rejection nobody waits for (the run failed first) is not an error
  return {
    promise,
    resolve: (v) => { if (!settled) { settled = true; resolve(v); } },
    reject: (e) => { if (!settled) { settled = true; reject(e); } },
    get settled() { return settled; },
  };
}

/**
 * Values arriving one by one under a key, waited for before or after they
 * arrive; `stop` rejects what is still waited for and aborts `signal` (a
 * failed download leaves packages that never land).
 *
 * @example
 * const files = new Arrivals<string, string>();
 * const path = files.wait('bash.rpm'); // settles when…
 * files.arrive('bash.rpm', '/var/cache/nsbox/by-sha256/ab/ab…');
 */
export class Arrivals<K, V> {
  readonly #waits = new Map<K, Deferred<V>>();
  readonly #values = new Map<K, V>();
  readonly #stop = new AbortController();

  /** Aborted by stop(). */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  wait(key: K): Promise<V> {
    // after stop, a value that has not arrived never will
    if (this.#stop.signal.aborted && !this.#values.has(key)) return Promise.reject(this.#stop.signal.reason);
    return this.#deferred(key).promise;
  }

  arrive(key: K, value: V): void {
    this.#values.set(key, value);
    this.#deferred(key).resolve(value);
  }

  /** The value, once it has arrived. */
  get(key: K): V | undefined {
    return this.#values.get(key);
  }

  stop(reason: unknown): void {
    this.#stop.abort(reason);
    for (const d of this.#waits.values()) d.reject(reason);
  }

  #deferred(key: K): Deferred<V> {
    let d = this.#waits.get(key);
    if (!d) this.#waits.set(key, (d = deferred<V>()));
    return d;
  }
}
