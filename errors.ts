/**
 * The one error type users see. Every failure a user can cause is an
 * NsboxError (or a subclass) carrying a one-line message, an optional hint,
 * and the exit code the CLI uses. Anything else escaping to the CLI is a bug
 * and is reported as one.
 *
 * @example
 * throw new UsageError('cannot use --boot with a COMMAND', { hint: 'pass init arguments after the options' });
 */
/** Brand on every NsboxError: the names of its classes, so `instanceof` works across copies of this module. */
const CLASSES = Symbol.for('nsbox.error-classes');

export class NsboxError extends Error {
  /**
   * `err instanceof UsageError` also for an error made by another copy of
   * this module (the CLI bundles bin/nsbox.ts and bin/bootstrap.ts
   * separately; a library user may mix dist/ and a bundle): the instance
   * carries the names of its classes under a global symbol.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const names = (value as { [CLASSES]?: unknown } | null)?.[CLASSES];
    return Array.isArray(names) && names.includes(this.name);
  }

  /** Machine-readable kind, e.g. "usage", "not-found". */
  readonly code: string;
  /** What the user can do about it, printed after the message. */
  readonly hint?: string;
  /** Process exit code the CLI uses for this failure. */
  readonly exitCode: number;

  constructor(message: string, opts: { code?: string; hint?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = opts.code ?? 'error';
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? 1;
    const names: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) names.push((c as { name: string }).name);
    Object.defineProperty(this, CLASSES, { value: names });
  }
}

/** Documented exit codes (README "Exit codes"). */
export const EXIT = {
  failure: 1,
  usage: 2,
  /** The container could not be set up (mount, namespace, tree problem). */
  setup: 3,
  /** Network / mirror problem. */
  network: 4,
  /** Signature, checksum or trust problem. */
  verify: 5,
  /** Interrupted (SIGINT) before completion. */
  interrupted: 130,
  /** Command not found inside the container (like nspawn's child). */
  notFound: 127,
} as const;

/** Bad flag, bad value, conflicting options. */
export class UsageError extends NsboxError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...opts, code: 'usage', exitCode: EXIT.usage });
  }
}

/** The container could not be created or entered. */
export class SetupError extends NsboxError {
  constructor(message: string, opts: { hint?: string; cause?: unknown; code?: string; exitCode?: number } = {}) {
    super(message, { code: 'setup', exitCode: EXIT.setup, ...opts });
  }
}

/** A mirror or URL could not be reached or answered wrongly. */
export class NetworkError extends NsboxError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...opts, code: 'network', exitCode: EXIT.network });
  }
}

/** A signature, checksum or size check failed. */
export class VerifyError extends NsboxError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...opts, code: 'verify', exitCode: EXIT.verify });
  }
}

/** The operation was cancelled (AbortSignal, Ctrl-C). */
export class AbortedError extends NsboxError {
  constructor(message = 'interrupted', opts: { cause?: unknown } = {}) {
    super(message, { ...opts, code: 'aborted', exitCode: EXIT.interrupted });
  }
}

/** Formats an error the way the CLI prints it (message, then hint). */
export function formatError(err: unknown): string {
  // One line: what went wrong, then what to do about it.
  if (err instanceof NsboxError) return err.hint ? `nsbox: ${err.message} (${err.hint})` : `nsbox: ${err.message}`;
  const e = err as Error;
  return `nsbox: internal error: ${e?.message ?? String(err)} (rerun with --debug for details)`;
}
