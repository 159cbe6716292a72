/**
 * The interactive console: nsbox holds the pty master and copies bytes
 * between it and the user's terminal (raw mode, window size forwarded).
 * Ctrl-] three times within a second asks to kill the container.
 */
import tty from 'node:tty';
import type { ConsoleMode } from './options.js';

export interface ConsoleProxy {
  /** Stops copying and restores the user's terminal. */
  close(): void;
}

const CTRL_RBRACKET = 0x1d;

export function proxyConsole(opts: {
  mode: ConsoleMode;
  masterFd: number;
  setWinsize: (rows: number, cols: number) => void;
  onKillRequest: () => void;
}): ConsoleProxy {
  const master = new tty.ReadStream(opts.masterFd);
  const stdin = process.stdin as tty.ReadStream;
  const stdout = process.stdout as tty.WriteStream;
  const forwardInput = opts.mode === 'interactive';
  const showOutput = opts.mode === 'interactive' || opts.mode === 'read-only';
  let presses: number[] = [];

  master.on('error', () => { /* EIO once the last slave closes: the container is ending */ });
  if (showOutput) master.on('data', (d: Buffer) => { stdout.write(d); });
  else master.on('data', () => { /* passive: drain so the container never blocks */ });
  stdout.on('error', () => { /* terminal closed: keep supervising until init is gone */ });

  const resize = () => { if (stdout.isTTY) opts.setWinsize(stdout.rows, stdout.columns); };
  resize();
  if (showOutput) stdout.on('resize', resize);

  const onInput = (d: Buffer) => {
    for (const b of d) {
      if (b !== CTRL_RBRACKET) continue;
      const now = Date.now();
      presses = presses.filter((t) => now - t < 1000);
      presses.push(now);
      if (presses.length >= 3) { presses = []; opts.onKillRequest(); return; }
    }
    if (forwardInput) master.write(d);
  };
  if (showOutput && stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.on('data', onInput);
    stdin.on('error', () => {});
    stdin.resume();
  }
  return {
    close() {
      stdin.off('data', onInput);
      stdout.off('resize', resize);
      if (stdin.isTTY) { try { stdin.setRawMode(false); } catch { /* terminal gone */ } }
      stdin.pause();
      master.destroy();
    },
  };
}
