/**
 * The interactive console: nsbox holds the pty master and copies bytes
 * between it and the user's terminal (made raw by runtime/terminal.ts,
 * window size forwarded).
 * Ctrl-] three times within a second asks to kill the container.
 */
import tty from 'node:tty';
import type { ConsoleMode } from './options.js';
import type { Terminal } from './terminal.js';

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
  /** The user's terminal, made raw while attached (runtime/terminal.ts). */
  terminal?: Terminal;
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
  opts.terminal?.makeRaw();
  if (showOutput && stdin.isTTY) {
    stdin.on('data', onInput);
    stdin.on('error', () => {});
    stdin.resume();
  }
  return {
    close() {
      stdin.off('data', onInput);
      stdout.off('resize', resize);
      opts.terminal?.restore();
      stdin.pause();
      master.destroy();
    },
  };
}
