/**
 * The listr2 task list renderer: one task per bootstrap phase, run in
 * order; each task waits for its phase's `start` and `done` events. Phases
 * that never start are shown as skipped. Loaded only through
 * `createRenderer('tasks')` (listr2 is heavy).
 */
import { Listr, type ListrTaskWrapper } from 'listr2';
import { deferred, type Deferred } from './deferred.js';
import { PHASES, formatDownload, type Phase, type ProgressEvent, type ProgressRenderer } from './progress.js';

const TITLES: Record<Phase, string> = {
  index: 'Read repository index',
  resolve: 'Resolve packages',
  download: 'Download packages',
  unpack: 'Unpack packages',
  configure: 'Configure packages',
  finish: 'Finish tree',
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Task = ListrTaskWrapper<any, any, any>;

/** See module comment. Output updates are throttled: 10/s on a terminal, one per 2 s otherwise. */
export class TaskRenderer implements ProgressRenderer {
  #start = new Map<Phase, Deferred<'run' | 'skip'>>();
  #done = new Map<Phase, Deferred<string | undefined>>();
  #tasks = new Map<Phase, Task>();
  #run: Promise<unknown>;
  #lastOutput = 0;
  #interval: number;
  #verbose: boolean;
  #warnings: string[] = [];
  #err: NodeJS.WritableStream;

  constructor(opts: { tty: boolean; verbose: boolean; err: NodeJS.WritableStream }) {
    this.#interval = opts.tty ? 100 : 2000;
    this.#verbose = opts.verbose;
    this.#err = opts.err;
    for (const p of PHASES) {
      this.#start.set(p, deferred());
      this.#done.set(p, deferred());
    }
    const listr = new Listr(
      PHASES.map((phase) => ({
        title: TITLES[phase],
        task: async (_ctx: unknown, task: Task) => {
          if ((await this.#start.get(phase)!.promise) === 'skip') {
            task.skip();
            return;
          }
          this.#tasks.set(phase, task);
          const detail = await this.#done.get(phase)!.promise;
          if (detail) task.title = `${TITLES[phase]}: ${detail}`;
        },
      })),
      {
        concurrent: false,
        exitOnError: true,
        registerSignalListeners: false,
        fallbackRendererCondition: !opts.tty,
        fallbackRenderer: 'simple',
        rendererOptions: { collapseSubtasks: false },
      },
    );
    this.#run = listr.run();
    this.#run.catch(() => {});
  }

  emit = (e: ProgressEvent): void => {
    switch (e.type) {
      case 'phase': {
        if (e.status === 'start') {
          for (const p of PHASES) {
            if (p === e.phase) break;
            if (!this.#start.get(p)!.settled) {
              this.#start.get(p)!.resolve('skip');
              this.#done.get(p)!.resolve(undefined);
            }
          }
          this.#start.get(e.phase)!.resolve('run');
        } else if (e.status === 'done') {
          this.#done.get(e.phase)!.resolve(e.detail);
        } else {
          this.#done.get(e.phase)!.reject(new Error(e.detail ?? `${e.phase} failed`));
        }
        return;
      }
      case 'download':
        this.#output('download', formatDownload(e), e.items === e.totalItems);
        return;
      case 'count':
        this.#output(e.phase, `${e.done}/${e.total}${e.current ? ` ${e.current}` : ''}`, e.done === e.total);
        return;
      case 'log':
        if (e.level === 'warn' || e.level === 'error') this.#warnings.push(`${e.level === 'warn' ? 'warning' : 'error'}: ${e.message}`);
        else if (e.level === 'info' || this.#verbose) this.#output(this.#current(), e.message, true);
        return;
      case 'item':
        return;
    }
  };

  async close(error?: unknown): Promise<void> {
    for (const p of PHASES) {
      const start = this.#start.get(p)!;
      const done = this.#done.get(p)!;
      if (!start.settled) start.resolve('skip');
      if (error !== undefined && !done.settled) done.reject(error);
      else done.resolve(undefined);
    }
    await this.#run.catch(() => {});
    for (const w of this.#warnings) this.#err.write(`nsbox: ${w}\n`);
  }

  #current(): Phase | undefined {
    let cur: Phase | undefined;
    for (const p of PHASES) if (this.#start.get(p)!.settled && !this.#done.get(p)!.settled) cur = p;
    return cur;
  }

  #output(phase: Phase | undefined, text: string, force: boolean): void {
    const task = phase && this.#tasks.get(phase);
    if (!task) return;
    const now = Date.now();
    if (!force && now - this.#lastOutput < this.#interval) return;
    this.#lastOutput = now;
    task.output = text;
  }
}
