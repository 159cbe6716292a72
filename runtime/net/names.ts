/**
 * Interface names as systemd-nspawn gives them: `ve-NAME` for -n, `vb-NAME`
 * for a veth on a bridge or zone, `vz-ZONE`, `mv-IF`, `iv-IF`, `host0`
 * inside. A name longer than the kernel's 15 characters keeps its first 11
 * and ends in 4 characters of a SipHash-2-4 of the full name under nspawn's
 * key, so nsbox and nspawn name the same machine's interface alike (the
 * full name becomes an alternative name).
 */

const MASK = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & MASK;

/** SipHash-2-4 (Aumasson and Bernstein) of data under a 16-byte key. */
export function siphash24(data: Uint8Array, key: Uint8Array): bigint {
  const k = new DataView(key.buffer, key.byteOffset, 16);
  const k0 = k.getBigUint64(0, true), k1 = k.getBigUint64(8, true);
  let v0 = k0 ^ 0x736f6d6570736575n, v1 = k1 ^ 0x646f72616e646f6dn, v2 = k0 ^ 0x6c7967656e657261n, v3 = k1 ^ 0x7465646279746573n;
  const round = () => {
    v0 = (v0 + v1) & MASK; v1 = rotl(v1, 13n); v1 ^= v0; v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK; v3 = rotl(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & MASK; v3 = rotl(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & MASK; v1 = rotl(v1, 17n); v1 ^= v2; v2 = rotl(v2, 32n);
  };
  const full = data.length - (data.length % 8);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const compress = (m: bigint) => { v3 ^= m; round(); round(); v0 ^= m; };
  for (let i = 0; i < full; i += 8) compress(view.getBigUint64(i, true));
  let last = BigInt(data.length & 0xff) << 56n;
  for (let i = full; i < data.length; i++) last |= BigInt(data[i]) << BigInt(8 * (i - full));
  compress(last);
  v2 ^= 0xffn;
  round(); round(); round(); round();
  return (v0 ^ v1 ^ v2 ^ v3) & MASK;
}

/** nspawn's SHORTEN_IFNAME_HASH_KEY. */
const SHORTEN_KEY = Uint8Array.from([0xe1, 0x90, 0xa4, 0x04, 0xa8, 0xef, 0x4b, 0x51, 0x8c, 0xcc, 0xc3, 0x3a, 0x9f, 0x11, 0xfc, 0xa2]);
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
export const IFNAMSIZ = 16;

/**
 * Fits an interface name into 15 bytes the way nspawn does.
 *
 * @example
 * shortenIfname('ve-a-rather-long-machine') // => 've-a-rather' + 4 hash characters
 */
export function shortenIfname(name: string): string {
  const bytes = Buffer.from(name);
  if (bytes.length < IFNAMSIZ) return name;
  const h = siphash24(bytes, SHORTEN_KEY);
  const c = (shift: bigint) => B64URL[Number((h >> shift) & 63n)];
  return bytes.subarray(0, IFNAMSIZ - 5).toString('latin1') + c(18n) + c(12n) + c(6n) + c(0n);
}

/** The host end of the container's veth: `ve-NAME`, or `vb-NAME` on a bridge or zone. */
export function hostVethName(machine: string, bridged: boolean): string {
  return shortenIfname(`${bridged ? 'vb-' : 've-'}${machine}`);
}

export const zoneBridgeName = (zone: string) => `vz-${zone}`;
export const macvlanName = (parent: string) => shortenIfname(`mv-${parent}`);
export const ipvlanName = (parent: string) => shortenIfname(`iv-${parent}`);
/** The container's end of the veth, as nspawn names it. */
export const CONTAINER_VETH = 'host0';
