/**
 * The recipe: what to build, as typed data. Built-in recipes live in
 * recipes/ (debian, fedora); a user's recipe file extends one. The engine
 * (bootstrap/index.ts) turns a recipe into a finished tree; post-install
 * steps run inside the new tree through nsbox's runtime.
 *
 * @example
 * const recipe: Recipe = { distribution: 'debian', release: 'bookworm', variant: 'boot',
 *   post: [{ kind: 'hostname', hostname: 'web1' }, { kind: 'sshd', port: 2222, authorizedKeys: '/root/.ssh/id_ed25519.pub' }] };
 */
export type Distribution = 'debian' | 'fedora';

export interface Recipe {
  distribution: Distribution;
  /** Codename or alias (debian), number or "rawhide" (fedora); default: the newest stable. */
  release?: string;
  /** Distribution architecture name (amd64 / x86_64); default: the host's. */
  arch?: string;
  variant?: string;
  /** Base URL of the mirror; default: the host's configuration (debian) or the metalink (fedora). */
  mirror?: string;
  /** Fedora metalink URL (instead of mirror). */
  metalink?: string;
  /** Debian components; default main. */
  components?: string[];
  /** Extra packages. */
  include?: string[];
  /** Packages never to install. */
  exclude?: string[];
  /** Fedora: install weak dependencies too. */
  withRecommends?: boolean;
  /** Debian: add the -updates and -security suites for stable releases (default true). */
  updates?: boolean;
  /** OpenPGP keyring file to trust instead of the bundled/pinned keys. */
  keyring?: string;
  /** Skip signature checks (warns loudly). */
  noVerify?: boolean;
  /** Steps run in the finished tree, in order. */
  post?: PostStep[];
}

/** A post-install step. Steps that need a command run inside the tree with nsbox's runtime. */
export type PostStep =
  | { kind: 'hostname'; hostname: string }
  /** Hashed inside the tree with its own tools; the clear text is never stored. */
  | { kind: 'root-password'; password?: string; passwordFile?: string }
  | { kind: 'user'; name: string; uid?: number; groups?: string[]; shell?: string; password?: string; passwordFile?: string; authorizedKeys?: string }
  | { kind: 'locale'; locale: string }
  | { kind: 'timezone'; timezone: string }
  | { kind: 'file'; path: string; content: string; mode?: number; owner?: string }
  | { kind: 'services'; enable?: string[]; disable?: string[]; mask?: string[] }
  | { kind: 'command'; command: string[] | string }
  /** A getty on /dev/console and a login that works for `nsbox run -b`. */
  | { kind: 'console-login' }
  /** OpenSSH server on an alternate port (default 2222), key-only root login. */
  | { kind: 'sshd'; port?: number; authorizedKeys?: string; socketActivated?: boolean };

/** Typed progress events the engine reports (see bootstrap/progress.ts). */
export type { ProgressEvent } from './progress.js';

export interface BootstrapOptions {
  /** Download cache (default /var/cache/nsbox). */
  cacheDir?: string;
  /** Cancels the bootstrap; the tree stays marked incomplete. */
  signal?: AbortSignal;
  /** Progress events, typed. */
  onProgress?: (event: import('./progress.js').ProgressEvent) => void;
  /** Accept a non-empty directory that nsbox did not create. */
  force?: boolean;
  /** Accept an expired Release file (Debian mirrors that are not updated). */
  ignoreValidUntil?: boolean;
  /**
   * Reuse (and store) the cached result of the deterministic first stage
   * (Debian: the essential set installed by dpkg), keyed by its exact package
   * files (default true). See bootstrap/stage-cache.ts.
   */
  stageCache?: boolean;
}

export interface BootstrapResult {
  dir: string;
  distribution: Distribution;
  release: string;
  arch: string;
  variant: string;
  /** Installed packages, name → version. */
  packages: Record<string, string>;
  /** Bytes downloaded this run (0 with a warm cache). */
  downloadedBytes: number;
  /** Package files downloaded this run (0 with a warm cache). */
  downloadedFiles: number;
  /** Files that came from the cache. */
  cachedFiles: number;
}
