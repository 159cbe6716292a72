/** Linux capability names and the default set a container keeps. */
import { UsageError } from '../errors.js';

/** Capability numbers from linux/capability.h. */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4,
  CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10, CAP_NET_BROADCAST: 11, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15, CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17, CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20, CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25, CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27, CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29, CAP_AUDIT_CONTROL: 30, CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34, CAP_WAKE_ALARM: 35, CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
};

const bit = (name: string): bigint => 1n << BigInt(CAPABILITIES[name]);

/**
 * systemd-nspawn's retained set (its CapBnd inside a container is
 * 0xfcecafff, measured on this project's machines with systemd 252).
 */
export const DEFAULT_CAPS: bigint = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_RAW', 'CAP_IPC_OWNER', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
].reduce((m, n) => m | bit(n), 0n);

/** Every capability nsbox knows of (`--capability all`). */
export const ALL_CAPS: bigint = Object.keys(CAPABILITIES).reduce((m, n) => m | bit(n), 0n);

/**
 * Parses a comma-separated capability list as systemd-nspawn accepts it:
 * names with or without `CAP_`, any case, or `all`.
 *
 * @example
 * parseCapabilities('net_admin,CAP_SYS_TIME', '--capability') // => (1n << 12n) | (1n << 25n)
 */
export function parseCapabilities(list: string, flag: string): bigint {
  let mask = 0n;
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (raw.toLowerCase() === 'all') { mask |= ALL_CAPS; continue; }
    const name = raw.toUpperCase().startsWith('CAP_') ? raw.toUpperCase() : `CAP_${raw.toUpperCase()}`;
    if (!(name in CAPABILITIES)) {
      throw new UsageError(`unknown capability \`${raw}\` in ${flag}`, { hint: 'names look like CAP_NET_ADMIN or net_admin; `all` selects every capability' });
    }
    mask |= bit(name);
  }
  return mask;
}

/** Names of the capabilities in a mask, for messages and `nsbox list`. */
export function capabilityNames(mask: bigint): string[] {
  return Object.entries(CAPABILITIES).filter(([, n]) => mask & (1n << BigInt(n))).map(([k]) => k);
}
