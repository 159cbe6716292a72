/**
 * IPv4 addressing for nsbox's own links, as networkd would do it on the
 * host (its 80-container-ve.network gives a ve-* link a /28 and
 * 80-container-vz.network a zone bridge a /24, out of the private ranges):
 * a subnet that nothing on the host uses yet (no address, no route in any
 * table, no other container's lease), the host end first, the container
 * next. Pure: the caller gathers what is in use.
 */

export interface Prefix { network: number; length: number }

/** Private ranges searched in order, as networkd's default address pool. */
export const POOLS: Prefix[] = [
  { network: ip4('10.0.0.0'), length: 8 },
  { network: ip4('172.16.0.0'), length: 12 },
  { network: ip4('192.168.0.0'), length: 16 },
];

export function ip4(s: string): number {
  const p = s.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${s}`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
export const fmt4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
export const mask4 = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
export const formatPrefix = (p: Prefix) => `${fmt4(p.network)}/${p.length}`;

export function parsePrefix(s: string): Prefix {
  const [a, l] = s.split('/');
  const length = l === undefined ? 32 : Number(l);
  return { network: (ip4(a) & mask4(length)) >>> 0, length };
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  const len = Math.min(a.length, b.length);
  return ((a.network ^ b.network) & mask4(len)) === 0;
}

/** A 32-bit FNV-1a of text: the same machine name starts its search at the same subnet every time. */
export function seed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}

/**
 * The first subnet of `length` bits in the pools, starting at a place given
 * by `key`, that overlaps nothing in `used` (the default route excluded).
 *
 * @example
 * pickSubnet(28, [parsePrefix('10.0.0.0/24')], 'web') // => e.g. { network: 10.93.17.32, length: 28 }
 */
export function pickSubnet(length: number, used: Prefix[], key: string, pools: Prefix[] = POOLS): Prefix | undefined {
  const taken = used.filter((u) => u.length > 0);
  const s = seed(key);
  for (const pool of pools) {
    const count = 2 ** (length - pool.length);
    const start = s % count;
    // walk at most 4096 candidates of each pool from the seeded start
    for (let i = 0; i < Math.min(count, 4096); i++) {
      const idx = (start + i) % count;
      const cand = { network: (pool.network + idx * 2 ** (32 - length)) >>> 0, length };
      if (!taken.some((u) => overlaps(u, cand))) return cand;
    }
  }
  return undefined;
}

/** The addresses of a veth subnet: host end .1 (the container's gateway), container .2. */
export function vethAddresses(subnet: Prefix): { host: string; container: string; prefix: number } {
  return { host: fmt4(subnet.network + 1), container: fmt4(subnet.network + 2), prefix: subnet.length };
}

/**
 * A container's address in a zone's subnet (the bridge holds .1): the first
 * free one from a place given by the machine name, skipping `taken`.
 */
export function zoneAddress(subnet: Prefix, taken: string[], machine: string): string | undefined {
  const hosts = 2 ** (32 - subnet.length) - 3; // network, bridge, broadcast
  const start = seed(machine) % hosts;
  for (let i = 0; i < hosts; i++) {
    const a = fmt4(subnet.network + 2 + ((start + i) % hosts));
    if (!taken.includes(a)) return a;
  }
  return undefined;
}
