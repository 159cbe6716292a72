/** `--listen [ADDR:]PORT[,…]` specs, as systemd's ListenStream= reads them. */
import { UsageError } from '../errors.js';
import { isIP } from 'node:net';

export interface ListenSpec { addr: string; port: number; text: string }

/**
 * @example
 * parseListen('127.0.0.1:2222,[::1]:2222,8080')
 * // => [{addr:'127.0.0.1',port:2222}, {addr:'::1',port:2222}, {addr:'',port:8080}]
 */
export function parseListen(value: string): ListenSpec[] {
  const out: ListenSpec[] = [];
  for (const text of value.split(',').map((s) => s.trim())) {
    const bad = () => new UsageError(`invalid --listen \`${text}\``, { hint: 'use [ADDR:]PORT, e.g. 2222, 127.0.0.1:2222 or [::1]:2222' });
    if (!text) throw bad();
    let addr = '', port = '';
    const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(text);
    if (v6) { addr = v6[1]; port = v6[2]; }
    else if (/^\d+$/.test(text)) port = text;
    else {
      const i = text.lastIndexOf(':');
      if (i <= 0) throw bad();
      addr = text.slice(0, i); port = text.slice(i + 1);
    }
    if (addr && !isIP(addr)) throw bad();
    const n = Number(port);
    if (!/^\d+$/.test(port) || n < 1 || n > 65535) throw new UsageError(`invalid port in --listen \`${text}\``, { hint: 'ports are 1 to 65535' });
    out.push({ addr, port: n, text });
  }
  return out;
}
