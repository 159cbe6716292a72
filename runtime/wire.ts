/**
 * Serializes a plan for the native helper: a flat list of NUL-terminated
 * strings, "key" followed by a fixed number of fields (spawn.c parse_plan).
 */
import type { ContainerPlan } from './plan.js';

const CLONE_NEWNET = 0x40000000;
/** Overlay flags shared with spawn.c. */
const OVERLAY = { RO: 1, TMPFS_UPPER: 2, USERXATTR: 4 };
/** A layer path for spawn.c: "+" marks a path inside the tree. */
const layer = (l: { path: string; inTree: boolean }) => (l.inTree ? `+${l.path}` : l.path);
/** Bind flags shared with spawn.c. */
const BIND = { RO: 1, REC: 2, OPTIONAL: 4, NOSUID: 8, NODEV: 16, NOEXEC: 32 };

/** Encodes a plan; `join` makes it enter the namespaces of a running container instead. */
export function encodePlan(plan: ContainerPlan, opts: { join?: number; dieWithParent?: boolean } = {}): Buffer {
  const out: string[] = [];
  const put = (...f: (string | number)[]) => {
    for (const x of f) {
      const s = String(x);
      if (s.includes('\0')) throw new Error(`NUL byte in plan field \`${s.replace(/\0/g, '\\0')}\``);
      out.push(s);
    }
  };
  if (opts.join) put('join', opts.join);
  else {
    put('clone', plan.network ? CLONE_NEWNET : 0);
    put('tree', plan.tree);
    if (plan.cgroupNamespace) put('cgroupns');
  }
  if (plan.cgroup) put('cgroup', plan.cgroup);
  if (opts.dieWithParent !== false) put('pdeathsig');
  if (!opts.join) {
    put('hostname', plan.hostname);
    for (const op of plan.mounts) {
      switch (op.kind) {
        case 'mount': put('mount', op.source, op.dest, op.fstype, op.flags, op.data); break;
        case 'bind': {
          const f = (op.readonly ? BIND.RO : 0) | (op.recursive ? BIND.REC : 0) | (op.optional ? BIND.OPTIONAL : 0) |
            (op.nosuid ? BIND.NOSUID : 0) | (op.nodev ? BIND.NODEV : 0) | (op.noexec ? BIND.NOEXEC : 0);
          put('bind', op.source, op.dest, f);
          break;
        }
        case 'mkdir': put('mkdir', op.path, op.mode.toString(8)); break;
        case 'symlink': put('symlink', op.target, op.path); break;
        case 'mknod': put('mknod', op.path, op.mode.toString(8), `${op.major}:${op.minor}`); break;
        case 'mask': put('mask', op.path); break;
        case 'readonly': put('readonly', op.path); break;
        case 'write': put('write', op.path, op.mode.toString(8), op.content); break;
        case 'overlay': {
          const f = (op.readonly ? OVERLAY.RO : 0) | (op.upper === 'tmpfs' ? OVERLAY.TMPFS_UPPER : 0) | (plan.userns ? OVERLAY.USERXATTR : 0);
          put('overlay', op.lowers.map(layer).join(':'), op.upper && op.upper !== 'tmpfs' ? layer(op.upper) : '', op.work ?? '', op.dest, f);
          break;
        }
        case 'attach': put('attach', op.fd, op.dest); break;
      }
    }
    if (plan.userns) {
      put('userns', plan.userns.uidShift, plan.userns.uidCount);
      if (plan.userns.treeMount !== undefined) put('tree-fd', plan.userns.treeMount);
    }
    if (plan.rootLayers) put('rootfs', plan.rootLayers);
    if (plan.rootReadOnly) put('root-ro');
    if (plan.bringUpLoopback) put('netlo');
    for (const n of plan.netifs ?? []) put('netif', n.name, n.address ?? '', n.prefix ?? 0, n.gateway ?? '');
  }
  if (plan.rendezvous) put('rendezvous');
  if (plan.suppressSync) put('nosync');
  put('caps', plan.capabilities.toString(16));
  if (plan.user) put('user', plan.user.uid, plan.user.gid, plan.user.groups.join(','));
  if (plan.cwd) put('chdir', plan.cwd);
  if (plan.consolePath) put('console', plan.consolePath);
  for (const fd of plan.listenFds) put('listen', fd);
  if (plan.stdio) put('stdio', ...plan.stdio);
  for (const e of plan.env) put('env', e);
  for (const a of plan.argv) put('arg', a);
  return Buffer.from(out.join('\0') + '\0');
}
