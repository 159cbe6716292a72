/**
 * What the host's network namespace holds, read over rtnetlink by the
 * native helper (net.c nsbox_nl_dump) and parsed here: links (with kind,
 * master and alias), IPv4 addresses and IPv4 routes of every table. Not
 * /sys/class/net: sysfs shows the namespace of whoever mounted it, which is
 * not ours when nsbox runs under `nsenter --net`.
 */
import { parsePrefix, type Prefix } from './address.js';

export interface HostLink { index: number; name: string; kind: string; master: number; up: boolean; alias: string }
export interface HostState { links: HostLink[]; addresses: { index: number; address: string; prefix: number }[]; routes: Prefix[] }

export function parseDump(text: string): HostState {
  const state: HostState = { links: [], addresses: [], routes: [] };
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'link') {
      state.links.push({ index: Number(f[1]), name: f[2], kind: f[3] === '-' ? '' : f[3], master: Number(f[4]), up: (Number(f[5]) & 1) === 1, alias: f.slice(6).join('\t') });
    } else if (f[0] === 'addr') {
      state.addresses.push({ index: Number(f[1]), address: f[2], prefix: Number(f[3]) });
    } else if (f[0] === 'route') {
      state.routes.push(parsePrefix(`${f[1]}/${f[2]}`));
    }
  }
  return state;
}

/** Every IPv4 prefix in use: routes of all tables and the subnets of all addresses. */
export function usedPrefixes(state: HostState): Prefix[] {
  return [...state.routes, ...state.addresses.map((a) => parsePrefix(`${a.address}/${a.prefix}`))];
}

export function findLink(state: HostState, name: string): HostLink | undefined {
  return state.links.find((l) => l.name === name);
}
