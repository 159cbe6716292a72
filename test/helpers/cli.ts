/** Runs the built nsbox CLI (dist/, made by `npm ci` and by `npm test`'s pretest). */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const NSBOX = join(REPO, 'dist/cli/nsbox.cjs');

export function nsbox(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [NSBOX, ...args], {
    encoding: 'utf8', input: opts.input ?? '', env: { ...process.env, ...opts.env }, timeout: opts.timeout ?? 60_000,
  });
}

export function nsboxAsync(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  return spawn(process.execPath, [NSBOX, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Resolves with { code, signal, stdout, stderr } when the child exits. */
export function collect(child: import('node:child_process').ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  child.stderr!.on('data', (d) => { stderr += d; });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
