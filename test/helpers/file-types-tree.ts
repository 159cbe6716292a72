/**
 * A small tree with every file type and attribute an archive must carry:
 * setuid and sticky modes, owners, a file capability and a user xattr,
 * hard links, absolute and relative symlinks, long names and link targets,
 * a deep path, names that are not ASCII or not UTF-8, a FIFO, character and
 * block devices, a socket, an empty file, a sparse file, a mode 0000 file,
 * mtimes before 1970 and with nanoseconds. Built in code; needs root.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mknod, setXattr, S_IFBLK, S_IFCHR, S_IFIFO } from '../../bootstrap/archive/native.js';

/** `nonUtf8: false` leaves out the name that is not UTF-8 (nsbox's extractor reads names as UTF-8). */
export async function makeFileTypesTree(opts: { nonUtf8?: boolean } = {}): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'nsbox-types-'));
  chmodSync(root, 0o755);
  const p = (rel: string) => join(root, rel);
  for (const d of ['bin', 'etc', 'dev', 'tmp', 'srv/deep', 'home/user']) mkdirSync(p(d), { recursive: true });
  chmodSync(p('tmp'), 0o1777);
  writeFileSync(p('etc/os-release'), 'NAME="nsbox file types"\nID=nsboxtypes\n');
  writeFileSync(p('bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  chmodSync(p('bin/tool'), 0o4755);
  execFileSync('setcap', ['cap_net_raw+ep', p('bin/tool')]);
  linkSync(p('bin/tool'), p('bin/tool-hardlink'));
  await setXattr(p('etc'), 'user.nsbox', Buffer.from('directory attribute'));
  await setXattr(p('etc/os-release'), 'user.bin', Buffer.from([0, 1, 2, 0xff, 0x80]));
  symlinkSync('/etc/os-release', p('etc/abs-link'));
  symlinkSync('../etc/os-release', p('bin/rel-link'));
  const long = 'l'.repeat(150);
  writeFileSync(p(`srv/${long}`), 'a long name\n');
  symlinkSync(`/srv/${long}`, p('srv/long-target'));
  const deep = Array.from({ length: 25 }, () => 'level').join('/');
  mkdirSync(p(`srv/deep/${deep}`), { recursive: true });
  writeFileSync(p(`srv/deep/${deep}/leaf`), 'deep\n');
  writeFileSync(p('srv/ünïcødé'), 'utf-8 name\n');
  if (opts.nonUtf8 !== false) writeFileSync(Buffer.from(`${root}/srv/latin1-\xe9`, 'latin1'), 'not utf-8\n');
  writeFileSync(p('srv/empty'), '');
  writeFileSync(p('srv/sparse'), '');
  truncateSync(p('srv/sparse'), 3 << 20);
  writeFileSync(p('srv/mode0'), 'no permissions\n');
  chmodSync(p('srv/mode0'), 0);
  writeFileSync(p('home/user/.profile'), 'export X=1\n');
  chownSync(p('home/user'), 1000, 1000);
  chownSync(p('home/user/.profile'), 1000, 100);
  await mknod(p('srv/fifo'), S_IFIFO, 0o644);
  await mknod(p('dev/null'), S_IFCHR, 0o666, 1, 3);
  await mknod(p('dev/loop9'), S_IFBLK, 0o660, 7, 9);
  chownSync(p('dev/loop9'), 0, 6);
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    // libuv removes a listener's socket file when it closes: a hard link to it stays
    server.listen(p('srv/.socket'), () => {
      linkSync(p('srv/.socket'), p('srv/socket'));
      server.close(() => resolve());
    });
  });
  utimesSync(p('srv/empty'), -315619200.5, -315619200.5); // 1959-12-31T23:59:59.5Z
  utimesSync(p('srv/sparse'), 1600000000.123456, 1600000000.123456);
  utimesSync(p('srv/deep'), 1000000000, 1000000000);
  return root;
}
