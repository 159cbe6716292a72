/** Drives a program in a real pty through tmux (send-keys / capture-pane). */
import { execFileSync } from 'node:child_process';
import { sleep } from './cli.js';

export class Tmux {
  readonly session: string;
  constructor(name: string) { this.session = `${name}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`; }

  start(command: string, opts: { width?: number; height?: number } = {}): void {
    execFileSync('tmux', ['new-session', '-d', '-s', this.session, '-x', String(opts.width ?? 160), '-y', String(opts.height ?? 50), command]);
    execFileSync('tmux', ['set-option', '-t', this.session, 'remain-on-exit', 'on']);
  }
  send(...keys: string[]): void { execFileSync('tmux', ['send-keys', '-t', this.session, ...keys]); }
  type(text: string): void { execFileSync('tmux', ['send-keys', '-t', this.session, '-l', text]); }
  screen(): string {
    try { return execFileSync('tmux', ['capture-pane', '-p', '-J', '-S', '-200', '-t', this.session], { encoding: 'utf8' }); } catch { return ''; }
  }
  /** Whether the pane's program has ended (remain-on-exit keeps the pane). */
  dead(): boolean {
    try { return execFileSync('tmux', ['display-message', '-p', '-t', this.session, '#{pane_dead} #{pane_dead_status}'], { encoding: 'utf8' }).startsWith('1'); } catch { return true; }
  }
  exitStatus(): number | undefined {
    try {
      const [dead, status] = execFileSync('tmux', ['display-message', '-p', '-t', this.session, '#{pane_dead} #{pane_dead_status}'], { encoding: 'utf8' }).trim().split(' ');
      return dead === '1' ? Number(status) : undefined;
    } catch { return undefined; }
  }
  async waitFor(pattern: RegExp | string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (typeof pattern === 'string' ? s.includes(pattern) : pattern.test(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} on screen:\n${s}`);
      await sleep(100);
    }
  }
  /** Waits for a prompt, types the answer (if any) and presses Enter. */
  async answer(prompt: RegExp | string, text?: string, timeoutMs = 30_000): Promise<string> {
    const screen = await this.waitFor(prompt, timeoutMs);
    if (text) this.type(text);
    this.send('Enter');
    return screen;
  }
  async waitDead(timeoutMs = 30_000): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.dead()) return this.exitStatus();
      await sleep(100);
    }
    throw new Error(`pane still running after ${timeoutMs} ms:\n${this.screen()}`);
  }
  kill(): void { try { execFileSync('tmux', ['kill-session', '-t', this.session], { stdio: 'ignore' }); } catch { /* gone */ } }
}
