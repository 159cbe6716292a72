/**
 * Progress events both engines emit, and the three ways the CLI shows them:
 * a listr2 task list on a terminal, `--quiet` (errors only), and `--json`
 * (one event per line on stdout, for scripts and the wizard).
 *
 * Engines only call `emit(event)`; they never print.
 */

/** Bootstrap phases, in the order they run. */
export const PHASES = ['index', 'resolve', 'download', 'unpack', 'configure', 'finish'] as const;
export type Phase = (typeof PHASES)[number];

/** A phase starts, ends, or fails. */
export interface PhaseEvent {
  type: 'phase';
  phase: Phase;
  status: 'start' | 'done' | 'failed';
  /** Short detail, e.g. "142 packages". */
  detail?: string;
}

/** Download totals so far (throttled by the fetcher). `rate` is bytes/s over the last seconds. */
export interface DownloadEvent {
  type: 'download';
  bytes: number;
  totalBytes: number;
  items: number;
  totalItems: number;
  /** Items served from the cache without a download. */
  cachedItems?: number;
  rate: number;
}

/** One item (package, file) finished within a phase. */
export interface ItemEvent {
  type: 'item';
  phase: Phase;
  name: string;
  status: 'done' | 'cached' | 'skipped';
}

/** Unpack/configure counters: `done` of `total` packages. */
export interface CountEvent {
  type: 'count';
  phase: Phase;
  done: number;
  total: number;
  current?: string;
}

/** A message for the user. `debug` shows only with --verbose. */
export interface LogEvent {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

export type ProgressEvent = PhaseEvent | DownloadEvent | ItemEvent | CountEvent | LogEvent;

/** Where engines send events. */
export type ProgressSink = (event: ProgressEvent) => void;

/** A renderer: feed it events, close it once (with the error when the run failed). */
export interface ProgressRenderer {
  emit: ProgressSink;
  close(error?: unknown): Promise<void>;
}

/** How the CLI shows progress: `tasks` (default), `quiet` (--quiet), `json` (--json). */
export type RenderMode = 'tasks' | 'quiet' | 'json';

export interface RendererOptions {
  /** Stream for json lines (default process.stdout). */
  out?: NodeJS.WritableStream;
  /** Stream for messages (default process.stderr). */
  err?: NodeJS.WritableStream;
  /** Whether the task list may redraw a terminal (default: process.stdout.isTTY). */
  tty?: boolean;
  /** Show debug log events. */
  verbose?: boolean;
}

/**
 * Creates the renderer for a mode. The task list lazy-imports listr2.
 *
 * @example
 * const r = await createRenderer(opts.json ? 'json' : opts.quiet ? 'quiet' : 'tasks');
 * try { await bootstrap({ ..., onProgress: r.emit }); await r.close(); }
 * catch (e) { await r.close(e); throw e; }
 */
export async function createRenderer(mode: RenderMode, opts: RendererOptions = {}): Promise<ProgressRenderer> {
  if (mode === 'json') return jsonRenderer(opts.out ?? process.stdout);
  if (mode === 'quiet') return quietRenderer(opts.err ?? process.stderr);
  const tty = opts.tty ?? Boolean(process.stdout.isTTY);
  const { TaskRenderer } = await import('./progress-tasks.js');
  return new TaskRenderer({ tty, verbose: opts.verbose ?? false, err: opts.err ?? process.stderr });
}

/** One JSON object per line; errors become `{ type: 'error', message, code }`. */
export function jsonRenderer(out: NodeJS.WritableStream): ProgressRenderer {
  return {
    emit: (e) => {
      out.write(`${JSON.stringify(e)}\n`);
    },
    close: async (error?: unknown) => {
      if (error !== undefined) {
        const e = error as { message?: string; code?: string };
        out.write(`${JSON.stringify({ type: 'error', message: e?.message ?? String(error), code: e?.code ?? 'error' })}\n`);
      }
    },
  };
}

/** Prints only error-level log events (the CLI prints the final error itself). */
export function quietRenderer(err: NodeJS.WritableStream): ProgressRenderer {
  return {
    emit: (e) => {
      if (e.type === 'log' && e.level === 'error') err.write(`nsbox: ${e.message}\n`);
    },
    close: async () => {},
  };
}

/** Human bytes: 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** The download line the task list shows: "12.3 MiB / 40.0 MiB, 5/20 files, 3.2 MiB/s". */
export function formatDownload(e: DownloadEvent): string {
  const total = e.totalBytes > 0 ? ` / ${formatBytes(e.totalBytes)}` : '';
  const cached = e.cachedItems ? ` (${e.cachedItems} cached)` : '';
  return `${formatBytes(e.bytes)}${total}, ${e.items}/${e.totalItems} files${cached}, ${formatBytes(e.rate)}/s`;
}

/**
 * A count with thousands separators, `66,548` (toLocaleString would load
 * ICU's locale data: 20 ms of a bootstrap, measured).
 *
 * @example
 * formatCount(66548); // '66,548'
 */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
