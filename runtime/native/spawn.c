/*
 * nsbox native helper: the only C in nsbox.
 *
 * Node is multithreaded, so namespaces cannot be entered from JavaScript
 * (see shared/DESIGN.md). TypeScript computes a container plan as plain data
 * and serializes it to a flat list of NUL-terminated strings; this file
 * parses that list in the parent (malloc is fine there), clone()s a child
 * into new namespaces, and the child walks the parsed ops with
 * async-signal-safe calls only, then execs. It has no policy of its own: it
 * accepts a fixed set of op kinds and rejects anything else.
 *
 * Failures in the child are reported over a close-on-exec pipe as
 * "<exit code>\0<message>" so TypeScript prints one line such as
 * "cannot bind-mount `/srv/x` on `/data`: No such file or directory".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/openat2.h>
#include <linux/mount.h>
#include <sys/file.h>
#include <sys/xattr.h>
#include <net/if.h>
#include <pthread.h>
#include <spawn.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define MAX_OPS 256
#define MAX_STRS 4096
#define STACK_SIZE (256 * 1024)

/* Bind flags shared with runtime/wire.ts. */
enum { BIND_RO = 1, BIND_REC = 2, BIND_OPTIONAL = 4, BIND_NOSUID = 8, BIND_NODEV = 16, BIND_NOEXEC = 32 };

enum op_kind { OP_MOUNT, OP_BIND, OP_MKDIR, OP_SYMLINK, OP_MKNOD, OP_MASK, OP_READONLY, OP_WRITE, OP_OVERLAY, OP_ATTACH };

/* Overlay flags shared with runtime/wire.ts. */
enum { OVL_RO = 1, OVL_TMPFS_UPPER = 2, OVL_USERXATTR = 4 };
/* How the tree becomes the root (plan "rootfs"). */
enum { ROOT_PLAIN = 0, ROOT_OVERLAY = 1, ROOT_VOLATILE_YES = 2 };

struct op {
  enum op_kind kind;
  const char *a, *b, *c, *d, *e;
  unsigned long n;
};

struct plan {
  /* namespaces and placement */
  int clone_flags;
  int cgroupns;
  const char *cgroup; /* cgroup2 directory the child is moved into before it unshares its cgroup namespace */
  pid_t join;         /* enter the namespaces of this pid instead of creating new ones */
  /* file system */
  const char *tree;
  int root_readonly;
  struct op ops[MAX_OPS];
  int nops;
  /* process */
  const char *hostname;
  int set_caps;
  uint64_t caps;
  int has_user;
  uid_t uid;
  gid_t gid;
  gid_t groups[64];
  int ngroups;
  const char *chdir;
  const char *console; /* host path of a pty slave, or NULL for pipe mode */
  int netlo;
  /* network: container interfaces to configure after lo (runtime/net/, "netif" records) */
  struct { const char *name, *addr, *gateway; int prefix; } netifs[8];
  int nnetifs;
  int listen_fds[32];
  int nlisten;
  int stdio[3]; /* fds to become 0–2 in pipe mode, or -1 to keep */
  int die_with_parent;
  int suppress_sync; /* sync calls succeed without doing anything (nspawn's --suppress-sync) */
  int rendezvous;    /* the child waits after clone until the parent has set up the host side */
  int userns;        /* a new user namespace: the parent writes its id maps at the rendezvous */
  int tree_fd;       /* index in passed_fds of an idmapped tree mount, or -1 */
  int rootfs;        /* ROOT_*: the tree under a tmpfs overlay, or a tmpfs holding its /usr */
  const char *argv[MAX_STRS];
  int argc;
  const char *envp[MAX_STRS];
  int envc;
  /* runtime, child side */
  int errfd;
  int syncfd;        /* rendezvous: the child's end of a socketpair, or -1 */
  int passed_fds[16]; /* fds the parent sent at the rendezvous (SCM_RIGHTS), in order */
  int npassed;
  int console_fd;
};

/* ---------- error reporting (child side, async-signal-safe) ---------- */

static size_t s_len(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

static char *s_append(char *p, char *end, const char *s) {
  while (*s && p < end) *p++ = *s++;
  return p;
}

/* Writes "<code>\0<what>: <strerror(err)>" to the error pipe and exits. */
static void __attribute__((noreturn)) die_child(struct plan *p, int code, int err, const char *what) {
  char buf[2048];
  char *q = buf, *end = buf + sizeof buf - 1;
  char num[8];
  int i = 0, c = code;
  do { num[i++] = (char)('0' + c % 10); c /= 10; } while (c && i < 7);
  while (i) *q++ = num[--i];
  *q++ = 0;
  q = s_append(q, end, what);
  if (err) {
    q = s_append(q, end, ": ");
    q = s_append(q, end, strerror(err));
  }
  if (p->errfd >= 0) {
    ssize_t r = write(p->errfd, buf, (size_t)(q - buf));
    (void)r;
  }
  _exit(code);
}

/* Formats "cannot <verb> `a`<mid>`b`" into buf. */
static const char *fmt2(char *buf, size_t size, const char *verb, const char *a, const char *mid, const char *b) {
  char *q = buf, *end = buf + size - 1;
  q = s_append(q, end, "cannot ");
  q = s_append(q, end, verb);
  q = s_append(q, end, " `");
  q = s_append(q, end, a);
  q = s_append(q, end, "`");
  if (b) {
    q = s_append(q, end, mid);
    q = s_append(q, end, "`");
    q = s_append(q, end, b);
    q = s_append(q, end, "`");
  }
  *q = 0;
  return buf;
}

/* ---------- plan parsing (parent side) ---------- */

static int parse_u64(const char *s, uint64_t *out, int base) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, base);
  if (errno || *end || end == s) return -1;
  *out = v;
  return 0;
}

/* The plan is "key\0value\0…" records; ops carry a fixed number of fields. */
static int parse_plan(const char *buf, int len, struct plan *p, char *err, int errlen) {
  const char *strs[MAX_STRS * 2];
  int n = 0;
  const char *q = buf, *end = buf + len;
  memset(p, 0, sizeof *p);
  p->errfd = p->console_fd = p->syncfd = -1;
  p->tree_fd = -1;
  p->stdio[0] = p->stdio[1] = p->stdio[2] = -1;
  while (q < end) {
    if (n >= (int)(sizeof strs / sizeof strs[0])) { snprintf(err, errlen, "plan too large"); return -1; }
    strs[n++] = q;
    q += strlen(q) + 1;
  }
#define NEED(k) do { if (i + (k) >= n) { snprintf(err, errlen, "plan: `%s` needs %d fields", key, k); return -1; } } while (0)
  for (int i = 0; i < n;) {
    const char *key = strs[i];
    uint64_t v = 0;
    if (!strcmp(key, "clone")) { NEED(1); if (parse_u64(strs[i + 1], &v, 10)) goto bad; p->clone_flags = (int)v; i += 2; }
    else if (!strcmp(key, "cgroupns")) { p->cgroupns = 1; i += 1; }
    else if (!strcmp(key, "cgroup")) { NEED(1); p->cgroup = strs[i + 1]; i += 2; }
    else if (!strcmp(key, "join")) { NEED(1); if (parse_u64(strs[i + 1], &v, 10)) goto bad; p->join = (pid_t)v; i += 2; }
    else if (!strcmp(key, "tree")) { NEED(1); p->tree = strs[i + 1]; i += 2; }
    else if (!strcmp(key, "root-ro")) { p->root_readonly = 1; i += 1; }
    else if (!strcmp(key, "hostname")) { NEED(1); p->hostname = strs[i + 1]; i += 2; }
    else if (!strcmp(key, "caps")) { NEED(1); if (parse_u64(strs[i + 1], &v, 16)) goto bad; p->caps = v; p->set_caps = 1; i += 2; }
    else if (!strcmp(key, "user")) {
      NEED(3);
      uint64_t u, g;
      if (parse_u64(strs[i + 1], &u, 10) || parse_u64(strs[i + 2], &g, 10)) goto bad;
      p->has_user = 1; p->uid = (uid_t)u; p->gid = (gid_t)g;
      const char *s = strs[i + 3];
      while (*s && p->ngroups < 64) {
        char *e2;
        unsigned long gg = strtoul(s, &e2, 10);
        if (e2 == s) goto bad;
        p->groups[p->ngroups++] = (gid_t)gg;
        s = *e2 == ',' ? e2 + 1 : e2;
      }
      i += 4;
    }
    else if (!strcmp(key, "chdir")) { NEED(1); p->chdir = strs[i + 1]; i += 2; }
    else if (!strcmp(key, "console")) { NEED(1); p->console = strs[i + 1]; i += 2; }
    else if (!strcmp(key, "netlo")) { p->netlo = 1; i += 1; }
    else if (!strcmp(key, "netif")) { /* netif NAME ADDR PREFIX GATEWAY ("" for none) */
      NEED(4);
      if (p->nnetifs >= 8 || parse_u64(strs[i + 3], &v, 10) || v > 32) goto bad;
      p->netifs[p->nnetifs].name = strs[i + 1];
      p->netifs[p->nnetifs].addr = strs[i + 2];
      p->netifs[p->nnetifs].prefix = (int)v;
      p->netifs[p->nnetifs].gateway = strs[i + 4];
      p->nnetifs++;
      i += 5;
    }
    else if (!strcmp(key, "pdeathsig")) { p->die_with_parent = 1; i += 1; }
    else if (!strcmp(key, "nosync")) { p->suppress_sync = 1; i += 1; }
    else if (!strcmp(key, "rendezvous")) { p->rendezvous = 1; i += 1; }
    else if (!strcmp(key, "userns")) { NEED(2); p->userns = 1; p->clone_flags |= CLONE_NEWUSER; i += 3; }
    else if (!strcmp(key, "tree-fd")) { NEED(1); if (parse_u64(strs[i + 1], &v, 10) || v >= 16) goto bad; p->tree_fd = (int)v; i += 2; }
    else if (!strcmp(key, "rootfs")) {
      NEED(1);
      if (!strcmp(strs[i + 1], "overlay")) p->rootfs = ROOT_OVERLAY;
      else if (!strcmp(strs[i + 1], "volatile-yes")) p->rootfs = ROOT_VOLATILE_YES;
      else goto bad;
      i += 2;
    }
    else if (!strcmp(key, "listen")) {
      NEED(1);
      if (parse_u64(strs[i + 1], &v, 10) || p->nlisten >= 32) goto bad;
      p->listen_fds[p->nlisten++] = (int)v; i += 2;
    }
    else if (!strcmp(key, "stdio")) {
      NEED(3);
      for (int k = 0; k < 3; k++) {
        if (parse_u64(strs[i + 1 + k], &v, 10)) goto bad;
        p->stdio[k] = (int)v;
      }
      i += 4;
    }
    else if (!strcmp(key, "arg")) { NEED(1); if (p->argc >= MAX_STRS - 1) goto bad; p->argv[p->argc++] = strs[i + 1]; i += 2; }
    else if (!strcmp(key, "env")) { NEED(1); if (p->envc >= MAX_STRS - 1) goto bad; p->envp[p->envc++] = strs[i + 1]; i += 2; }
    else {
      struct op *o;
      if (p->nops >= MAX_OPS) { snprintf(err, errlen, "plan: too many mount operations"); return -1; }
      o = &p->ops[p->nops];
      if (!strcmp(key, "mount")) { /* mount SOURCE DEST FSTYPE FLAGS DATA */
        NEED(5); o->kind = OP_MOUNT; o->a = strs[i + 1]; o->b = strs[i + 2]; o->c = strs[i + 3];
        if (parse_u64(strs[i + 4], &v, 10)) goto bad;
        o->n = v; o->d = strs[i + 5]; i += 6;
      } else if (!strcmp(key, "bind")) { /* bind HOSTSRC DEST FLAGS */
        NEED(3); o->kind = OP_BIND; o->a = strs[i + 1]; o->b = strs[i + 2];
        if (parse_u64(strs[i + 3], &v, 10)) goto bad;
        o->n = v; i += 4;
      } else if (!strcmp(key, "mkdir")) { /* mkdir PATH MODE(octal) */
        NEED(2); o->kind = OP_MKDIR; o->b = strs[i + 1];
        if (parse_u64(strs[i + 2], &v, 8)) goto bad;
        o->n = v; i += 3;
      } else if (!strcmp(key, "symlink")) { /* symlink TARGET PATH */
        NEED(2); o->kind = OP_SYMLINK; o->a = strs[i + 1]; o->b = strs[i + 2]; i += 3;
      } else if (!strcmp(key, "mknod")) { /* mknod PATH MODE(octal, with type) MAJOR:MINOR */
        NEED(3); o->kind = OP_MKNOD; o->b = strs[i + 1];
        if (parse_u64(strs[i + 2], &v, 8)) goto bad;
        o->n = v; o->c = strs[i + 3]; i += 4;
      } else if (!strcmp(key, "mask")) { /* mask PATH: hide a file or directory if it exists */
        NEED(1); o->kind = OP_MASK; o->b = strs[i + 1]; i += 2;
      } else if (!strcmp(key, "readonly")) { /* readonly PATH: bind onto itself read-only, if it exists */
        NEED(1); o->kind = OP_READONLY; o->b = strs[i + 1]; i += 2;
      } else if (!strcmp(key, "overlay")) { /* overlay LOWERS UPPER WORK DEST FLAGS: "+" marks paths inside the tree */
        NEED(5); o->kind = OP_OVERLAY; o->a = strs[i + 1]; o->c = strs[i + 2]; o->d = strs[i + 3]; o->b = strs[i + 4];
        if (parse_u64(strs[i + 5], &v, 10)) goto bad;
        o->n = v; i += 6;
      } else if (!strcmp(key, "attach")) { /* attach INDEX DEST: move passed_fds[INDEX] (a detached mount) onto DEST */
        NEED(2); o->kind = OP_ATTACH; o->b = strs[i + 2];
        if (parse_u64(strs[i + 1], &v, 10) || v >= 16) goto bad;
        o->n = v; i += 3;
      } else if (!strcmp(key, "write")) { /* write PATH MODE(octal) CONTENT */
        NEED(3); o->kind = OP_WRITE; o->b = strs[i + 1];
        if (parse_u64(strs[i + 2], &v, 8)) goto bad;
        o->n = v; o->c = strs[i + 3]; i += 4;
      } else {
        snprintf(err, errlen, "plan: unknown operation `%s`", key);
        return -1;
      }
      p->nops++;
    }
    continue;
  bad:
    snprintf(err, errlen, "plan: bad value for `%s`", key);
    return -1;
  }
#undef NEED
  p->argv[p->argc] = NULL;
  p->envp[p->envc] = NULL;
  if (p->argc == 0) { snprintf(err, errlen, "plan: no command"); return -1; }
  if (!p->join && !p->tree) { snprintf(err, errlen, "plan: no tree"); return -1; }
  if (p->userns && !p->rendezvous) { snprintf(err, errlen, "plan: a user namespace needs the rendezvous"); return -1; }
  return 0;
}

/* ---------- paths inside the tree (child side) ---------- */

static int treefd = -1;

/* Opens PATH (container path) resolved inside the tree: symlinks in the tree
 * can never lead out of it, the same guarantee nspawn gets from chase(). */
static int open_in_tree(const char *path, int flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  while (*path == '/') path++;
  if (!*path) path = ".";
  return (int)syscall(SYS_openat2, treefd, path, &how, sizeof how);
}

/* Splits PATH into a parent fd and the last component (copied into name). */
static int open_parent(const char *path, char *name, size_t size) {
  char buf[4096];
  size_t n = s_len(path);
  if (n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
  memcpy(buf, path, n + 1);
  while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
  char *slash = strrchr(buf, '/');
  const char *last = slash ? slash + 1 : buf;
  if (s_len(last) >= size) { errno = ENAMETOOLONG; return -1; }
  memcpy(name, last, s_len(last) + 1);
  if (slash) *slash = 0; else buf[0] = 0;
  return open_in_tree(buf[0] ? buf : "/", O_PATH | O_DIRECTORY);
}

/* mkdir -p inside the tree. */
static int mkdir_in_tree(const char *path, mode_t mode) {
  char buf[4096];
  size_t n = s_len(path);
  if (n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    char saved = buf[i];
    buf[i] = 0;
    int fd = open_in_tree(buf, O_PATH | O_DIRECTORY);
    if (fd >= 0) {
      close(fd);
    } else if (errno == ENOENT) {
      char name[256];
      int dfd = open_parent(buf, name, sizeof name);
      if (dfd < 0) return -1;
      int r = mkdirat(dfd, name, mode);
      int e = errno;
      close(dfd);
      if (r < 0 && e != EEXIST) { errno = e; return -1; }
    } else {
      return -1;
    }
    buf[i] = saved;
  }
  return 0;
}

/* Creates an empty regular file (a bind target for a file source). */
static int touch_in_tree(const char *path) {
  char name[256];
  int fd = open_in_tree(path, O_PATH);
  if (fd >= 0) { close(fd); return 0; }
  if (errno != ENOENT) return -1;
  char parent[4096];
  size_t n = s_len(path);
  if (n >= sizeof parent) { errno = ENAMETOOLONG; return -1; }
  memcpy(parent, path, n + 1);
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) { *slash = 0; if (mkdir_in_tree(parent, 0755) < 0) return -1; }
  int dfd = open_parent(path, name, sizeof name);
  if (dfd < 0) return -1;
  /* O_EXCL|O_NOFOLLOW: a dangling symlink must not create a file outside the tree */
  fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
  int e = errno;
  close(dfd);
  if (fd < 0) { errno = e; return -1; }
  close(fd);
  return 0;
}

/* "/proc/self/fd/N" for mounting onto an fd opened inside the tree. */
static void fd_path(char *buf, int fd) {
  char num[16];
  int i = 0;
  do { num[i++] = (char)('0' + fd % 10); fd /= 10; } while (fd);
  char *q = buf;
  q = s_append(q, buf + 30, "/proc/self/fd/");
  while (i) *q++ = num[--i];
  *q = 0;
}

/* Changes the flags of the bind mount at path. Reopened by path: an fd taken
 * before the mount points at the mount point below it. */
static void remount_in_tree(struct plan *p, const char *path, unsigned long flags) {
  char msg[1024], target[32];
  int fd = open_in_tree(path, O_PATH);
  if (fd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open mount point", path, "", NULL));
  fd_path(target, fd);
  if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
    die_child(p, 3, errno, fmt2(msg, sizeof msg, (flags & MS_RDONLY) ? "remount read-only" : "remount", path, "", NULL));
  close(fd);
}

/* ---------- user namespaces and overlays (child side) ---------- */

static int move_mount_fd(int from, int to) {
  return (int)syscall(SYS_move_mount, from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

/* -U: the parent has written our id maps. Our ids are still the host's root,
 * which the namespace does not map; switching to its root makes what we
 * create owned by root inside (and keeps every capability in the namespace). */
static void become_userns_root(struct plan *p) {
  if (setgroups(0, NULL) < 0) die_child(p, 3, errno, "cannot clear the supplementary groups in the user namespace");
  if (setresgid(0, 0, 0) < 0) die_child(p, 3, errno, "cannot become gid 0 in the user namespace (is the gid map written?)");
  if (setresuid(0, 0, 0) < 0) die_child(p, 3, errno, "cannot become uid 0 in the user namespace (is the uid map written?)");
}

/* The tree at its own path in our mount namespace: a recursive bind, or
 * under -U with mapped ownership the idmapped clone the parent made. */
static void mount_tree(struct plan *p) {
  char msg[1024];
  if (p->tree_fd >= 0) {
    /* The parent cloned the tree's mount (idmapped or not). Its host path may
     * lie below a 0700 directory (/var/lib/machines is) that root of our
     * namespace cannot traverse: attach it at a staging point of our own,
     * on the host's /sys, which a -U child never uses (sysfs comes as an fd). */
    if (mount("tmpfs", "/sys", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") < 0 || mkdir("/sys/root", 0755) < 0)
      die_child(p, 3, errno, "cannot prepare the staging point of the tree");
    int to = open("/sys/root", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (p->tree_fd >= p->npassed || to < 0 || move_mount_fd(p->passed_fds[p->tree_fd], to) < 0)
      die_child(p, 3, p->tree_fd >= p->npassed ? EBADF : errno, fmt2(msg, sizeof msg, "attach the tree", p->tree, "", NULL));
    close(to);
    p->tree = "/sys/root";
    return;
  }
  if (mount(p->tree, p->tree, NULL, MS_BIND | MS_REC, NULL) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "bind-mount the tree", p->tree, "", NULL));
}

static char *append_fd(char *q, char *end, int fd) {
  char b[32];
  fd_path(b, fd);
  return s_append(q, end, b);
}

/* Gives dir the owner and mode of like (the upper layer's root becomes the
 * overlay's root: it must look like the tree's). */
static void copy_owner(int dir, int like) {
  struct stat st;
  char path[32];
  if (fstat(like, &st) < 0) return;
  fd_path(path, dir);
  if (chown(path, st.st_uid, st.st_gid) < 0) { /* best effort: ids the namespace cannot map */ }
  if (chmod(path, st.st_mode & 07777) < 0) { /* best effort */ }
}

/*
 * Mounts an overlayfs on the directory `target` names (reopened by path:
 * a mount on it changes what the path leads to). lowerfds are lowest first,
 * as on nsbox's command line (overlayfs wants the highest first). With
 * tmpfs_upper a tmpfs is mounted on the target first and holds upper and
 * work: it lives exactly as long as the container's mount namespace, so a
 * killed nsbox leaves nothing on the host. Otherwise upperfd/workfd are
 * host directories, or -1 for a read-only overlay.
 */
static void mount_overlay(struct plan *p, const char *label, int (*reopen)(const char *), const char *target,
                          int *lowerfds, int nlower, int upperfd, int workfd, unsigned long flags) {
  char data[4096], msg[1024], tpath[32];
  char *q = data, *end = data + sizeof data - 1;
  int tfd = -1, ownupper = 0;
  if (flags & OVL_TMPFS_UPPER) {
    tfd = reopen(target);
    if (tfd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open mount point", label, "", NULL));
    fd_path(tpath, tfd);
    if (mount("tmpfs", tpath, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "mount the tmpfs upper layer on", label, "", NULL));
    close(tfd);
    int top = reopen(target);
    if (top < 0 || mkdirat(top, "upper", 0755) < 0 || mkdirat(top, "work", 0755) < 0)
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "prepare the upper layer of", label, "", NULL));
    upperfd = openat(top, "upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
    workfd = openat(top, "work", O_PATH | O_DIRECTORY | O_CLOEXEC);
    close(top);
    if (upperfd < 0 || workfd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "prepare the upper layer of", label, "", NULL));
    copy_owner(upperfd, lowerfds[nlower - 1]);
    ownupper = 1;
  }
  q = s_append(q, end, "lowerdir=");
  for (int i = nlower - 1; i >= 0; i--) {
    q = append_fd(q, end, lowerfds[i]);
    if (i) q = s_append(q, end, ":");
  }
  if (upperfd >= 0) {
    q = s_append(q, end, ",upperdir=");
    q = append_fd(q, end, upperfd);
    q = s_append(q, end, ",workdir=");
    q = append_fd(q, end, workfd);
  }
  /* In a user namespace overlayfs keeps its metadata in user.overlay.* xattrs. */
  if (flags & OVL_USERXATTR) q = s_append(q, end, ",userxattr");
  *q = 0;
  tfd = reopen(target);
  if (tfd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open mount point", label, "", NULL));
  fd_path(tpath, tfd);
  if (mount("overlay", tpath, "overlay", (flags & OVL_RO) ? MS_RDONLY : 0, data) < 0)
    die_child(p, 3, errno, fmt2(msg, sizeof msg, "mount an overlay on", label, "", NULL));
  close(tfd);
  if (ownupper) { close(upperfd); close(workfd); }
}

static int reopen_host(const char *path) { return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC); }
static int reopen_in_tree(const char *path) { return open_in_tree(path, O_PATH | O_DIRECTORY); }

/* A layer of --overlay: "+PATH" inside the tree, else a host path. */
static int open_layer(const char *path) {
  if (path[0] == '+') return open_in_tree(path + 1, O_PATH | O_DIRECTORY);
  return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void apply_overlay(struct plan *p, struct op *o) {
  char msg[1024], buf[4096];
  int lowers[64], n = 0, upper = -1, work = -1;
  size_t len = s_len(o->a);
  if (len >= sizeof buf) die_child(p, 3, ENAMETOOLONG, fmt2(msg, sizeof msg, "mount an overlay on", o->b, "", NULL));
  memcpy(buf, o->a, len + 1);
  for (char *s = buf; *s && n < 64;) {
    char *colon = strchr(s, ':');
    if (colon) *colon = 0;
    if ((lowers[n++] = open_layer(s)) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open the overlay layer", s, " for ", o->b));
    if (!colon) break;
    s = colon + 1;
  }
  if (o->c[0]) {
    /* nspawn creates a missing upper directory */
    if (o->c[0] == '+') { if (mkdir_in_tree(o->c + 1, 0755) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "create the upper layer", o->c, "", NULL)); }
    upper = open_layer(o->c);
    work = o->d[0] ? open(o->d, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (upper < 0 || work < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open the upper layer", o->c, " for ", o->b));
  }
  if (mkdir_in_tree(o->b, 0755) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "create mount point", o->b, "", NULL));
  mount_overlay(p, o->b, reopen_in_tree, o->b, lowers, n, upper, work, o->n);
  for (int i = 0; i < n; i++) close(lowers[i]);
  if (upper >= 0) close(upper);
  if (work >= 0) close(work);
}

/* Moves a detached mount the parent made (an idmapped bind, the host's
 * sysfs) onto a path inside the tree. */
static void apply_attach(struct plan *p, struct op *o) {
  char msg[1024];
  struct stat st;
  if ((int)o->n >= p->npassed) die_child(p, 3, EBADF, fmt2(msg, sizeof msg, "attach a mount on", o->b, "", NULL));
  int from = p->passed_fds[o->n];
  int r = (fstat(from, &st) == 0 && !S_ISDIR(st.st_mode)) ? touch_in_tree(o->b) : mkdir_in_tree(o->b, 0755);
  if (r < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "create mount point", o->b, "", NULL));
  int to = open_in_tree(o->b, O_PATH);
  if (to < 0 || move_mount_fd(from, to) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "attach a mount on", o->b, "", NULL));
  close(to);
}

/*
 * -x and --volatile: what becomes / is built on the tree's mount. overlay:
 * the tree as the lower layer of an overlayfs whose upper layer is a tmpfs
 * (gone with the mount namespace). volatile-yes: a tmpfs root holding the
 * tree's /usr read-only and its top-level links into /usr (bin → usr/bin…).
 */
static void setup_root_layers(struct plan *p) {
  char msg[1024], path[32], upath[32];
  int old = open(p->tree, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (old < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open the tree", p->tree, "", NULL));
  if (p->rootfs == ROOT_OVERLAY) {
    mount_overlay(p, "/", reopen_host, p->tree, &old, 1, -1, -1, OVL_TMPFS_UPPER | (p->userns ? OVL_USERXATTR : 0));
    close(old);
    return;
  }
  int usr = openat(old, "usr", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (usr < 0) die_child(p, 3, errno, "cannot use --volatile=yes: the tree has no /usr directory");
  fd_path(path, old);
  if (mount("tmpfs", p->tree, "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=0755") < 0)
    die_child(p, 3, errno, "cannot mount the tmpfs root of --volatile=yes");
  int root = open(p->tree, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0 || mkdirat(root, "usr", 0755) < 0) die_child(p, 3, errno, "cannot create /usr in the tmpfs root");
  copy_owner(root, old);
  static const char *links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    char target[256];
    ssize_t n = readlinkat(old, links[i], target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    if (symlinkat(target, root, links[i]) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "create symlink", links[i], "", NULL));
  }
  int to = openat(root, "usr", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (to < 0) die_child(p, 3, errno, "cannot open /usr in the tmpfs root");
  copy_owner(to, usr);
  fd_path(path, usr);
  fd_path(upath, to);
  if (mount(path, upath, NULL, MS_BIND | MS_REC, NULL) < 0) die_child(p, 3, errno, "cannot bind-mount the tree's /usr");
  close(to);
  to = openat(root, "usr", O_PATH | O_DIRECTORY | O_CLOEXEC);
  fd_path(upath, to);
  if (to < 0 || mount(NULL, upath, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) die_child(p, 3, errno, "cannot make /usr read-only");
  close(to);
  close(root);
  close(usr);
  close(old);
}

static void apply_op(struct plan *p, struct op *o) {
  char msg[1024], target[32];
  int fd;
  switch (o->kind) {
  case OP_MKDIR:
    if (mkdir_in_tree(o->b, (mode_t)o->n) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "create directory", o->b, "", NULL));
    return;
  case OP_MOUNT:
    if (mkdir_in_tree(o->b, 0755) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "create mount point", o->b, "", NULL));
    fd = open_in_tree(o->b, O_PATH | O_DIRECTORY);
    if (fd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open mount point", o->b, "", NULL));
    fd_path(target, fd);
    if (mount(o->a, target, o->c, o->n, o->d[0] ? o->d : NULL) < 0)
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "mount", o->c, " on ", o->b));
    close(fd);
    return;
  case OP_BIND: {
    struct stat st;
    if (stat(o->a, &st) < 0) {
      if (o->n & BIND_OPTIONAL) return;
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "bind-mount", o->a, " on ", o->b));
    }
    int r = S_ISDIR(st.st_mode) ? mkdir_in_tree(o->b, 0755) : touch_in_tree(o->b);
    if (r < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "create mount point", o->b, "", NULL));
    fd = open_in_tree(o->b, O_PATH);
    if (fd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open mount point", o->b, "", NULL));
    fd_path(target, fd);
    if (mount(o->a, target, NULL, MS_BIND | ((o->n & BIND_REC) ? MS_REC : 0), NULL) < 0)
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "bind-mount", o->a, " on ", o->b));
    unsigned long extra = ((o->n & BIND_RO) ? MS_RDONLY : 0) | ((o->n & BIND_NOSUID) ? MS_NOSUID : 0) |
                          ((o->n & BIND_NODEV) ? MS_NODEV : 0) | ((o->n & BIND_NOEXEC) ? MS_NOEXEC : 0);
    close(fd);
    if (extra) remount_in_tree(p, o->b, extra);
    return;
  }
  case OP_SYMLINK: {
    char name[256];
    int dfd = open_parent(o->b, name, sizeof name);
    if (dfd < 0 || (symlinkat(o->a, dfd, name) < 0 && errno != EEXIST))
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "create symlink", o->b, "", NULL));
    close(dfd);
    return;
  }
  case OP_MKNOD: {
    char name[256];
    unsigned maj = 0, mnr = 0;
    const char *s = o->c;
    while (*s >= '0' && *s <= '9') maj = maj * 10 + (unsigned)(*s++ - '0');
    if (*s == ':') s++;
    while (*s >= '0' && *s <= '9') mnr = mnr * 10 + (unsigned)(*s++ - '0');
    int dfd = open_parent(o->b, name, sizeof name);
    if (dfd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "create device node", o->b, "", NULL));
    if (mknodat(dfd, name, (mode_t)o->n, makedev(maj, mnr)) < 0 && errno != EEXIST)
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "create device node", o->b, "", NULL));
    /* mknod honours the umask; device nodes must be exactly the mode asked. */
    if (fchmodat(dfd, name, (mode_t)o->n & 07777, 0) < 0) { /* best effort */ }
    close(dfd);
    return;
  }
  case OP_MASK: {
    struct stat st;
    fd = open_in_tree(o->b, O_PATH);
    if (fd < 0) return; /* nothing to hide */
    if (fstat(fd, &st) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "inspect", o->b, "", NULL));
    fd_path(target, fd);
    if (S_ISDIR(st.st_mode)) {
      if (mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=000") < 0)
        die_child(p, 3, errno, fmt2(msg, sizeof msg, "mask", o->b, "", NULL));
    } else if (mount("/dev/null", target, NULL, MS_BIND, NULL) < 0) {
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "mask", o->b, "", NULL));
    }
    close(fd);
    return;
  }
  case OP_READONLY: {
    fd = open_in_tree(o->b, O_PATH);
    if (fd < 0) return;
    fd_path(target, fd);
    if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
      die_child(p, 3, errno, fmt2(msg, sizeof msg, "bind-mount", o->b, " on ", o->b));
    close(fd);
    remount_in_tree(p, o->b, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    return;
  }
  case OP_OVERLAY: apply_overlay(p, o); return;
  case OP_ATTACH: apply_attach(p, o); return;
  case OP_WRITE: {
    char name[256];
    int dfd = open_parent(o->b, name, sizeof name);
    if (dfd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "write", o->b, "", NULL));
    fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)o->n);
    if (fd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "write", o->b, "", NULL));
    size_t len = s_len(o->c), off = 0;
    while (off < len) {
      ssize_t w = write(fd, o->c + off, len - off);
      if (w < 0) { if (errno == EINTR) continue; die_child(p, 3, errno, fmt2(msg, sizeof msg, "write", o->b, "", NULL)); }
      off += (size_t)w;
    }
    if (fchmod(fd, (mode_t)o->n) < 0) { /* best effort */ }
    close(fd);
    close(dfd);
    return;
  }
  }
}

/* ---------- process setup (child side) ---------- */

static void switch_root(struct plan *p) {
  char msg[1024];
  if (chdir(p->tree) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "enter", p->tree, "", NULL));
  /* pivot_root(".", ".") stacks the old root on top of the new one; detaching
   * it leaves no path back to the host (runc does the same). */
  if (syscall(SYS_pivot_root, ".", ".") == 0) {
    if (umount2(".", MNT_DETACH) < 0) die_child(p, 3, errno, "cannot detach the host's root");
  } else {
    /* pivot_root is refused on an initramfs root: move the tree instead. */
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) die_child(p, 3, errno, "cannot move the tree onto /");
    if (chroot(".") < 0) die_child(p, 3, errno, "cannot chroot into the tree");
  }
  if (chdir("/") < 0) die_child(p, 3, errno, "cannot enter /");
}

static void bring_up_lo(struct plan *p) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  if (s < 0) die_child(p, 3, errno, "cannot open a socket to configure lo");
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die_child(p, 3, errno, "cannot read the flags of lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die_child(p, 3, errno, "cannot bring up lo");
  close(s);
}

/* ---------- network: the container's interfaces (child side) ---------- */

#include <arpa/inet.h>
#include <net/route.h>
#include <netinet/in.h>

static void set_ipv4(struct plan *p, int s, struct ifreq *ifr, unsigned long req, const char *addr, const char *what) {
  char msg[1024];
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr->ifr_addr;
  memset(&ifr->ifr_addr, 0, sizeof ifr->ifr_addr);
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) die_child(p, 3, EINVAL, fmt2(msg, sizeof msg, what, ifr->ifr_name, "", NULL));
  if (ioctl(s, req, ifr) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, what, ifr->ifr_name, "", NULL));
}

/* Brings up each interface the host side moved in and, when the plan says
 * so, gives it its IPv4 address and the default route (a tree without a
 * network manager reaches the host at once; a booted networkd takes the
 * same static configuration from the drop-in the plan writes). */
static void configure_netifs(struct plan *p) {
  char msg[1024];
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die_child(p, 3, errno, "cannot open a socket to configure the network");
  for (int i = 0; i < p->nnetifs; i++) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    size_t n = s_len(p->netifs[i].name);
    if (n >= IFNAMSIZ) die_child(p, 3, ENAMETOOLONG, "cannot configure a network interface");
    memcpy(ifr.ifr_name, p->netifs[i].name, n + 1);
    if (p->netifs[i].addr[0]) {
      set_ipv4(p, s, &ifr, SIOCSIFADDR, p->netifs[i].addr, "set the address of");
      uint32_t mask = p->netifs[i].prefix ? htonl(0xffffffffu << (32 - p->netifs[i].prefix)) : 0;
      char m[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &mask, m, sizeof m);
      set_ipv4(p, s, &ifr, SIOCSIFNETMASK, m, "set the netmask of");
    }
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "read the flags of", ifr.ifr_name, "", NULL));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "bring up", ifr.ifr_name, "", NULL));
    if (p->netifs[i].gateway[0]) {
      struct rtentry rt;
      memset(&rt, 0, sizeof rt);
      struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway, *dst = (struct sockaddr_in *)&rt.rt_dst, *mk = (struct sockaddr_in *)&rt.rt_genmask;
      gw->sin_family = dst->sin_family = mk->sin_family = AF_INET;
      if (inet_pton(AF_INET, p->netifs[i].gateway, &gw->sin_addr) != 1) die_child(p, 3, EINVAL, "cannot add the default route");
      rt.rt_flags = RTF_UP | RTF_GATEWAY;
      rt.rt_dev = (char *)p->netifs[i].name;
      if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST) die_child(p, 3, errno, fmt2(msg, sizeof msg, "add the default route via", p->netifs[i].gateway, "", NULL));
    }
  }
  close(s);
}

static void set_capabilities(struct plan *p) {
  /* Bounding set first (needs CAP_SETPCAP), then the process sets. */
  for (int cap = 0; cap < 64; cap++) {
    if (p->caps & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      die_child(p, 3, errno, "cannot drop a capability from the bounding set");
    }
  }
  if (p->has_user && p->uid != 0) return; /* exec as non-root clears them anyway */
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = data[0].inheritable = (uint32_t)p->caps;
  data[1].effective = data[1].permitted = data[1].inheritable = (uint32_t)(p->caps >> 32);
  if (syscall(SYS_capset, &hdr, data) < 0) die_child(p, 3, errno, "cannot set capabilities");
}

/* The native architecture's audit id: other ABIs' calls pass the filter untouched. */
#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_S390X
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_RISCV64
#endif

/* A seccomp filter that turns fsync(2) and its relatives into successful
 * no-ops for the container's processes and their children, like nspawn's
 * --suppress-sync=yes: for builds whose durability is settled by one sync
 * afterwards (rpm syncs the whole file system after a transaction and
 * sqlite every database commit). Installed while the process still has
 * CAP_SYS_ADMIN, so no_new_privs is not needed and setuid programs inside
 * keep working. It only saves time: where the kernel has no seccomp
 * filters (or the architecture is not known here) the calls keep doing
 * their work, which is never wrong. */
static void suppress_sync(void) {
#ifdef NATIVE_AUDIT_ARCH
  static const int calls[] = {
    SYS_fsync, SYS_fdatasync, SYS_sync, SYS_syncfs,
#ifdef SYS_sync_file_range
    SYS_sync_file_range,
#endif
#ifdef SYS_sync_file_range2
    SYS_sync_file_range2,
#endif
  };
  enum { N = sizeof calls / sizeof calls[0] };
  struct sock_filter f[4 + N + 2];
  int k = 0;
  f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 1, 0);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  for (int i = 0; i < N; i++) /* a match jumps over the remaining tests and the ALLOW */
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)calls[i], (unsigned char)(N - i), 0);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0);
  struct sock_fprog prog = { (unsigned short)k, f };
  (void)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
#endif
}

static void set_user(struct plan *p) {
  if (!p->has_user) return;
  if (setgroups((size_t)p->ngroups, p->groups) < 0) die_child(p, 3, errno, "cannot set supplementary groups");
  if (setresgid(p->gid, p->gid, p->gid) < 0) die_child(p, 3, errno, "cannot set the group id");
  if (setresuid(p->uid, p->uid, p->uid) < 0) die_child(p, 3, errno, "cannot set the user id");
}

/* Moves the listen fds to 3, 4, … and the console onto 0–2; everything else
 * becomes close-on-exec (Node opens its fds 0–2 close-on-exec: DESIGN.md). */
static void arrange_fds(struct plan *p) {
  int n = p->nlisten;
  /* First copy listen fds above every target so dup2 cannot clobber one. */
  for (int i = 0; i < n; i++) {
    int nfd = fcntl(p->listen_fds[i], F_DUPFD_CLOEXEC, 3 + n + 64);
    if (nfd < 0) die_child(p, 3, errno, "cannot pass a listening socket");
    p->listen_fds[i] = nfd;
  }
  if (p->errfd < 3 + n + 64) {
    int nfd = fcntl(p->errfd, F_DUPFD_CLOEXEC, 3 + n + 64);
    if (nfd >= 0) p->errfd = nfd;
  }
  for (int i = 0; i < n; i++)
    if (dup2(p->listen_fds[i], 3 + i) < 0) die_child(p, 3, errno, "cannot pass a listening socket");
  if (p->console_fd >= 0) {
    for (int i = 0; i < 3; i++)
      if (dup2(p->console_fd, i) < 0) die_child(p, 3, errno, "cannot attach the console");
  } else {
    /* Caller-provided stdio (e.g. a log file): move above the targets first. */
    int tmp[3];
    for (int i = 0; i < 3; i++) {
      tmp[i] = p->stdio[i] >= 0 ? fcntl(p->stdio[i], F_DUPFD_CLOEXEC, 3 + n + 64) : -1;
      if (p->stdio[i] >= 0 && tmp[i] < 0) die_child(p, 3, errno, "cannot set up the container's stdio");
    }
    for (int i = 0; i < 3; i++)
      if (tmp[i] >= 0 && dup2(tmp[i], i) < 0) die_child(p, 3, errno, "cannot set up the container's stdio");
    for (int i = 0; i < 3; i++) {
      fcntl(i, F_SETFD, 0);
      int fl = fcntl(i, F_GETFL);
      if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(i, F_SETFL, fl & ~O_NONBLOCK);
    }
  }
  if (syscall(SYS_close_range, 3 + n, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    for (int fd = 3 + n; fd < 1024; fd++)
      if (fd != p->errfd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
}

static const char *getenv_plan(struct plan *p, const char *name) {
  size_t n = s_len(name);
  for (int i = 0; i < p->envc; i++)
    if (!strncmp(p->envp[i], name, n) && p->envp[i][n] == '=') return p->envp[i] + n + 1;
  return NULL;
}

static void __attribute__((noreturn)) exec_command(struct plan *p) {
  char msg[1024];
  const char *cmd = p->argv[0];
  if (strchr(cmd, '/')) {
    execve(cmd, (char *const *)p->argv, (char *const *)p->envp);
    int e = errno;
    die_child(p, e == ENOENT ? 127 : 126, e, fmt2(msg, sizeof msg, "execute", cmd, "", NULL));
  }
  const char *path = getenv_plan(p, "PATH");
  if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  int saw_eacces = 0;
  while (*path) {
    char buf[4096];
    const char *colon = strchr(path, ':');
    size_t dl = colon ? (size_t)(colon - path) : s_len(path);
    if (dl + s_len(cmd) + 2 < sizeof buf) {
      memcpy(buf, path, dl);
      buf[dl] = '/';
      memcpy(buf + dl + 1, cmd, s_len(cmd) + 1);
      execve(buf, (char *const *)p->argv, (char *const *)p->envp);
      if (errno == EACCES) saw_eacces = 1;
      else if (errno != ENOENT && errno != ENOTDIR) die_child(p, 126, errno, fmt2(msg, sizeof msg, "execute", buf, "", NULL));
    }
    if (!colon) break;
    path = colon + 1;
  }
  if (saw_eacces) die_child(p, 126, EACCES, fmt2(msg, sizeof msg, "execute", cmd, "", NULL));
  char *q = (char *)fmt2(msg, sizeof msg, "find", cmd, "", NULL);
  s_append(q + s_len(q), msg + sizeof msg - 1, " in the container's PATH")[0] = 0;
  die_child(p, 127, 0, msg);
}

/* Everything after the namespaces exist: shared by new containers and by
 * processes joining a running one. */
static void __attribute__((noreturn)) finish_and_exec(struct plan *p) {
  char msg[1024];
  if (setsid() < 0) die_child(p, 3, errno, "cannot start a session");
  if (p->console_fd >= 0 && ioctl(p->console_fd, TIOCSCTTY, 0) < 0) die_child(p, 3, errno, "cannot make the console the controlling terminal");
  arrange_fds(p);
  if (p->suppress_sync) suppress_sync();
  if (p->set_caps) set_capabilities(p);
  set_user(p);
  if (p->chdir && chdir(p->chdir) < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "change directory to", p->chdir, "", NULL));
  if (p->has_user && p->uid != 0 && p->set_caps) { /* non-root: nothing to keep */ }
  signal(SIGPIPE, SIG_DFL);
  exec_command(p);
}

/* Handlers are Node's: back to defaults, then unblock (parent blocked all). */
static void reset_signals(void) {
  sigset_t none;
  for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

static void enter_cgroup(struct plan *p, const char *dir) {
  char path[4096], msg[1024];
  char *q = s_append(path, path + sizeof path - 20, dir);
  q = s_append(q, path + sizeof path - 1, "/cgroup.procs");
  *q = 0;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "0", 1) != 1) die_child(p, 3, errno, fmt2(msg, sizeof msg, "enter cgroup", dir, "", NULL));
  close(fd);
}

/* Rendezvous, child side: every namespace exists; wait until the parent
 * has done its host-side part (a user namespace's id maps, a veth moved in)
 * and take the fds it sends. EOF without a message means it gave up. */
static void await_parent(struct plan *p) {
  char byte = 0;
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * 16)]; } ctl;
  struct iovec iov = { &byte, 1 };
  struct msghdr mh;
  ssize_t r;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl.buf;
  mh.msg_controllen = sizeof ctl.buf;
  do r = recvmsg(p->syncfd, &mh, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
  if (r != 1 || byte != 'G') _exit(3); /* nobody to report to */
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < n && p->npassed < 16; i++) memcpy(&p->passed_fds[p->npassed++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
  }
  close(p->syncfd);
  p->syncfd = -1;
}

static int child_main(void *arg) {
  struct plan *p = arg;
  char msg[1024];
  reset_signals();
  if (p->die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (p->rendezvous) await_parent(p);
  /* Into our cgroup before unsharing the cgroup namespace, so that it is the
   * container's root; "0" means the writer itself. */
  if (p->cgroup) enter_cgroup(p, p->cgroup);

  if (p->console && (p->console_fd = open(p->console, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
    die_child(p, 3, errno, fmt2(msg, sizeof msg, "open the console", p->console, "", NULL));
  /* -U: from here on, root of the user namespace (the host files above were opened as host root). */
  if (p->userns) become_userns_root(p);
  if (p->cgroupns && unshare(CLONE_NEWCGROUP) < 0) die_child(p, 3, errno, "cannot create a cgroup namespace");
  if (p->hostname && sethostname(p->hostname, s_len(p->hostname)) < 0) die_child(p, 3, errno, "cannot set the hostname");
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) die_child(p, 3, errno, "cannot make the mounts private");
  mount_tree(p);
  /* -x, --volatile: the root is built on the tree's mount. */
  if (p->rootfs) setup_root_layers(p);
  treefd = open(p->tree, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (treefd < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open the tree", p->tree, "", NULL));
  for (int i = 0; i < p->nops; i++) apply_op(p, &p->ops[i]);
  if (p->root_readonly && mount(NULL, p->tree, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
    die_child(p, 3, errno, "cannot make the tree read-only");
  close(treefd);
  switch_root(p);
  if (p->netlo) bring_up_lo(p);
  /* network: the interfaces the host steps moved in (runtime/net/) */
  if (p->nnetifs) configure_netifs(p);
  finish_and_exec(p);
}

/* ---------- joining a running container (child side) ---------- */

static int join_main(void *arg) {
  struct plan *p = arg;
  static const struct { const char *name; int flag; } nss[] = {
    /* the user namespace first: it gives the capabilities to join the others (-U machines) */
    { "user", CLONE_NEWUSER },
    { "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },
    { "net", CLONE_NEWNET }, { "pid", CLONE_NEWPID }, { "mnt", CLONE_NEWNS },
  };
  enum { NNS = sizeof nss / sizeof nss[0] };
  int fds[NNS], joined_user = 0;
  char path[64], msg[1024];
  reset_signals();
  if (p->die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (p->cgroup) enter_cgroup(p, p->cgroup);
  if (p->console && (p->console_fd = open(p->console, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
    die_child(p, 3, errno, fmt2(msg, sizeof msg, "open the console", p->console, "", NULL));
  /* Open every namespace first: after joining the mount namespace the
   * host's /proc is no longer reachable. */
  for (int i = 0; i < NNS; i++) {
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)p->join, nss[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) die_child(p, 3, errno, fmt2(msg, sizeof msg, "open namespace", path, "", NULL));
  }
  /* A namespace the container shares with us (the host's network without
   * --private-network) is skipped: after joining a -U container's user
   * namespace we could not join one the host's owns, and need not. */
  for (int i = 0; i < NNS; i++) {
    struct stat mine, theirs;
    snprintf(path, sizeof path, "/proc/self/ns/%s", nss[i].name);
    if (stat(path, &mine) == 0 && fstat(fds[i], &theirs) == 0 && mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev) { close(fds[i]); continue; }
    if (setns(fds[i], nss[i].flag) == 0) { if (nss[i].flag == CLONE_NEWUSER) joined_user = 1; }
    else if (errno != EINVAL) die_child(p, 3, errno, fmt2(msg, sizeof msg, "join namespace", nss[i].name, "", NULL));
    close(fds[i]);
  }
  if (joined_user) become_userns_root(p);
  /* A new pid namespace applies to children only: fork once more. */
  pid_t pid = fork();
  if (pid < 0) die_child(p, 3, errno, "cannot fork into the container");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (chdir("/") < 0) die_child(p, 3, errno, "cannot enter /");
    finish_and_exec(p);
  }
  close(p->errfd);
  p->errfd = -1;
  if (p->console_fd >= 0) close(p->console_fd);
  /* Relay the stop signals the supervisor sends to this intermediate. */
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, 0);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) _exit(3);
  }
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  _exit(128 + WTERMSIG(status));
}

/* ---------- the exported API (parent side, called through koffi) ---------- */

/*
 * Reaps pid if it has ended: returns its wait status, -1 while it runs, or
 * -2 if it is not our child. Node's libuv only reaps the children it spawned
 * itself, so the supervisor calls this on SIGCHLD.
 */
int nsbox_reap(int pid) {
  int status;
  pid_t r;
  do r = waitpid(pid, &status, WNOHANG | __WALL); while (r < 0 && errno == EINTR);
  if (r == 0) return -1;
  if (r < 0) return -2;
  return status;
}

/* Reads the child's report: returns 0 if it exec'd, else its exit code with
 * the message copied to err. */
static int read_report(int fd, char *err, int errlen) {
  char buf[2048];
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
    if (got >= sizeof buf - 1) break;
  }
  if (got == 0) return 0;
  buf[got] = 0;
  int code = atoi(buf);
  size_t off = strlen(buf) + 1;
  snprintf(err, errlen, "%s", off < got ? buf + off : "the container failed to start");
  return code ? code : 1;
}

static int __attribute__((unused)) write_pid(const char *dir, pid_t pid, char *err, int errlen) {
  char path[4096], num[32];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) { snprintf(err, errlen, "cannot open `%s`: %s", path, strerror(errno)); return -1; }
  int n = snprintf(num, sizeof num, "%d\n", (int)pid);
  if (write(fd, num, (size_t)n) != n) { snprintf(err, errlen, "cannot move the container into `%s`: %s", dir, strerror(errno)); close(fd); return -1; }
  close(fd);
  return 0;
}

void nsbox_spawn_abort(void *handle);

/* The state between nsbox_spawn_start and nsbox_spawn_resume. */
struct pending {
  pid_t pid;
  int reportfd; /* read end of the child's close-on-exec report pipe */
  int syncfd;   /* parent's end of the rendezvous socketpair, or -1 */
  char *stack;
  struct plan *plan;
};

static void pending_free(struct pending *w) {
  if (w->reportfd >= 0) close(w->reportfd);
  if (w->syncfd >= 0) close(w->syncfd);
  if (w->stack) munmap(w->stack, STACK_SIZE);
  free(w->plan);
  free(w);
}

/* Waits for the child's report; returns its pid if it exec'd, else -code. */
static int pending_finish(struct pending *w, char *err, int errlen) {
  int code = read_report(w->reportfd, err, errlen);
  int ret = w->pid;
  if (code) {
    while (waitpid(w->pid, NULL, __WALL) < 0 && errno == EINTR) {}
    ret = -code;
  }
  pending_free(w);
  return ret;
}

/*
 * Clones the container's first process (or the process that joins a
 * running one, with "join PID" in the plan). Without "rendezvous" it runs
 * straight to exec: returns its host pid (reap it with nsbox_reap), or
 * -EXITCODE (127 not found, 126 not executable, 3 setup) with err filled;
 * *handle stays NULL. With "rendezvous" the child waits once its namespaces
 * exist: this returns its pid at once and a handle for nsbox_spawn_resume
 * (or nsbox_spawn_abort), so TypeScript can set up the host side first.
 */
int nsbox_spawn_start(const char *planbuf, int planlen, char *err, int errlen, void **handle) {
  struct pending *w = calloc(1, sizeof *w);
  int errpipe[2] = { -1, -1 }, sv[2] = { -1, -1 };
  sigset_t all, saved;
  err[0] = 0;
  *handle = NULL;
  if (!w || !(w->plan = calloc(1, sizeof *w->plan))) { free(w); snprintf(err, errlen, "out of memory"); return -3; }
  w->reportfd = w->syncfd = -1;
  struct plan *p = w->plan;
  if (parse_plan(planbuf, planlen, p, err, errlen) < 0) { pending_free(w); return -3; }
  if (pipe2(errpipe, O_CLOEXEC) < 0) {
    snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
    pending_free(w);
    return -3;
  }
  w->reportfd = errpipe[0];
  p->errfd = errpipe[1];
  if (p->rendezvous) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
      snprintf(err, errlen, "cannot create a socket pair: %s", strerror(errno));
      close(errpipe[1]);
      pending_free(w);
      return -3;
    }
    w->syncfd = sv[0];
    p->syncfd = sv[1];
  }
  w->stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (w->stack == MAP_FAILED) {
    w->stack = NULL;
    snprintf(err, errlen, "cannot allocate a stack: %s", strerror(errno));
    close(errpipe[1]);
    if (sv[1] >= 0) close(sv[1]);
    pending_free(w);
    return -3;
  }
  /*
   * A new container is cloned with vfork semantics (CLONE_VM|CLONE_VFORK, as
   * posix_spawn does): no copy of Node's memory, and this thread sleeps until
   * the child has exec'd or failed. A child that waits at a rendezvous, or
   * that joins a running container (it forks again and waits), cannot share
   * our memory while we go on: it gets a plain copy.
   */
  int shared = !p->join && !p->rendezvous;
  int flags = SIGCHLD | (shared ? (CLONE_VM | CLONE_VFORK) : 0) |
              (p->join ? 0 : (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | p->clone_flags));
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = clone(p->join ? join_main : child_main, w->stack + STACK_SIZE, flags, p);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  close(errpipe[1]);
  if (sv[1] >= 0) close(sv[1]);
  if (pid < 0) {
    snprintf(err, errlen, "cannot create the container's namespaces: %s", strerror(clone_errno));
    pending_free(w);
    return -3;
  }
  w->pid = pid;
  if (p->rendezvous) { *handle = w; return pid; }
  return pending_finish(w, err, errlen);
}

/*
 * Lets a child waiting at its rendezvous go on, handing it fds (in order;
 * see passed_fds), and waits for its report: returns its pid once it has
 * exec'd, or -EXITCODE with err filled (the child is reaped). The handle is
 * freed either way.
 */
int nsbox_spawn_resume(void *handle, const int *fds, int nfds, char *err, int errlen) {
  struct pending *w = handle;
  char byte = 'G';
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * 16)]; } ctl;
  struct iovec iov = { &byte, 1 };
  struct msghdr mh;
  err[0] = 0;
  if (nfds < 0 || nfds > 16) { snprintf(err, errlen, "too many fds for the container"); nsbox_spawn_abort(handle); return -3; }
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds > 0) {
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  ssize_t r;
  do r = sendmsg(w->syncfd, &mh, MSG_NOSIGNAL); while (r < 0 && errno == EINTR);
  close(w->syncfd);
  w->syncfd = -1;
  /* If the child is already gone, its report (or EOF) tells. */
  return pending_finish(w, err, errlen);
}

/* Gives up on a child waiting at its rendezvous: kills and reaps it. */
void nsbox_spawn_abort(void *handle) {
  struct pending *w = handle;
  if (!w) return;
  kill(w->pid, SIGKILL);
  while (waitpid(w->pid, NULL, __WALL) < 0 && errno == EINTR) {}
  pending_free(w);
}

/* The one-step form: start and, with a rendezvous, resume at once. */
int nsbox_spawn(const char *planbuf, int planlen, char *err, int errlen) {
  void *h = NULL;
  int r = nsbox_spawn_start(planbuf, planlen, err, errlen, &h);
  if (r > 0 && h) return nsbox_spawn_resume(h, NULL, 0, err, errlen);
  return r;
}

/* Opens a pty master; the slave's path is written to name. */
int nsbox_openpty(char *name, int len) {
  int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -errno;
  if (grantpt(fd) < 0 || unlockpt(fd) < 0 || ptsname_r(fd, name, (size_t)len) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

int nsbox_set_winsize(int fd, int rows, int cols) {
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_row = (unsigned short)rows;
  ws.ws_col = (unsigned short)cols;
  return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

/* The user's terminal while a console is attached (nsbox_tty_*): its
 * settings are saved as the raw bytes of a struct termios, which is what
 * TypeScript hands back to restore them and what the guard gets as hex. */
int nsbox_tty_size(void) { return (int)sizeof(struct termios); }

int nsbox_tty_get(int fd, char *saved, int savedlen) {
  struct termios t;
  if ((size_t)savedlen < sizeof t) return -EINVAL;
  if (tcgetattr(fd, &t) < 0) return -errno;
  memcpy(saved, &t, sizeof t);
  return 0;
}

int nsbox_tty_set(int fd, const char *saved, int savedlen) {
  struct termios t;
  if ((size_t)savedlen < sizeof t) return -EINVAL;
  memcpy(&t, saved, sizeof t);
  int r;
  do r = tcsetattr(fd, TCSANOW, &t); while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

/* mode 1: fully raw (cfmakeraw: no echo, no signals, no output processing,
 * so "\n" from the container is not turned into "\r\n" a second time).
 * mode 2: raw output only, for read-only consoles (the user's keys still
 * signal nsbox), as systemd's pty forwarder does for its stdout. */
int nsbox_tty_raw(int fd, int mode) {
  struct termios t;
  if (tcgetattr(fd, &t) < 0) return -errno;
  if (mode == 1) {
    cfmakeraw(&t);
  } else {
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | IEXTEN);
  }
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  int r;
  do r = tcsetattr(fd, TCSANOW, &t); while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

/* ---------- device policy for cgroup2 (BPF_PROG_TYPE_CGROUP_DEVICE) ---------- */

#define INSN(code_, dst, src, off_, imm_) ((struct bpf_insn){ .code = (code_), .dst_reg = (dst), .src_reg = (src), .off = (off_), .imm = (imm_) })

/*
 * Attaches a device allow-list to a cgroup2 directory. Each rule is
 * "c MAJOR MINOR ACCESS" with MINOR -1 for any; mknod of any node is allowed
 * (package scripts create nodes) but opening one needs a rule. This is the
 * policy nspawn applies through its scope unit; it is what stops a root
 * container from mknod-ing the host's disk and mounting it.
 */
#define POLICY_NAME "nsbox_devices"

/* Whether a program named POLICY_NAME is already attached to the cgroup. */
static int policy_attached(int cfd) {
  union bpf_attr attr;
  uint32_t ids[64];
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)cfd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
  attr.query.prog_cnt = 64;
  if (syscall(SYS_bpf, BPF_PROG_QUERY, &attr, sizeof attr) < 0) return 0;
  for (uint32_t i = 0; i < attr.query.prog_cnt && i < 64; i++) {
    union bpf_attr a2;
    struct bpf_prog_info info;
    memset(&a2, 0, sizeof a2);
    a2.prog_id = ids[i];
    int pfd = (int)syscall(SYS_bpf, BPF_PROG_GET_FD_BY_ID, &a2, sizeof a2);
    if (pfd < 0) continue;
    memset(&info, 0, sizeof info);
    memset(&a2, 0, sizeof a2);
    a2.info.bpf_fd = (uint32_t)pfd;
    a2.info.info_len = sizeof info;
    a2.info.info = (uint64_t)(uintptr_t)&info;
    int r = (int)syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &a2, sizeof a2);
    close(pfd);
    if (r == 0 && !strncmp(info.name, POLICY_NAME, sizeof info.name)) return 1;
  }
  return 0;
}

int nsbox_device_policy(const char *cgroup_dir, const int *rules, int nrules, char *err, int errlen) {
  /* Attached to the parent of all containers once: cgroup device programs
   * apply to every descendant, so each container start only checks. */
  {
    int cfd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfd >= 0) {
      int have = policy_attached(cfd);
      close(cfd);
      if (have) return 0;
    }
  }
  struct bpf_insn prog[512];
  int n = 0;
  /* r2 = access_type; r3 = type = r2 & 0xffff; r2 = access = r2 >> 16; r4 = major; r5 = minor */
  prog[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, 2, 1, 0, 0);
  prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);
  prog[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, 3, 0, 0, 0xffff);
  prog[n++] = INSN(BPF_ALU64 | BPF_RSH | BPF_K, 2, 0, 0, 16);
  prog[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, 4, 1, 4, 0);
  prog[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, 5, 1, 8, 0);
  /* mknod alone is always allowed */
  int allow_jumps[200], nj = 0;
  allow_jumps[nj++] = n;
  prog[n++] = INSN(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 0, BPF_DEVCG_ACC_MKNOD);
  for (int i = 0; i < nrules && nj < 190; i++) {
    int type = rules[i * 4], maj = rules[i * 4 + 1], mnr = rules[i * 4 + 2], acc = rules[i * 4 + 3];
    /* skip this rule unless type, major (and minor) match and access ⊆ acc */
    int start = n;
    prog[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 3, 0, 0, type);
    prog[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, maj);
    if (mnr >= 0) prog[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, mnr);
    /* r0 = access & ~acc; if r0 == 0 allow */
    prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, 0, 2, 0, 0);
    prog[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, ~acc);
    allow_jumps[nj++] = n;
    prog[n++] = INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0);
    /* patch the skips to jump past this rule */
    for (int k = start; k < n - 3; k++) prog[k].off = (short)(n - k - 1);
  }
  /* deny */
  prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
  prog[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  int allow_at = n;
  prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1);
  prog[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  for (int k = 0; k < nj; k++) prog[allow_jumps[k]].off = (short)(allow_at - allow_jumps[k] - 1);

  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)prog;
  attr.insn_cnt = (uint32_t)n;
  attr.license = (uint64_t)(uintptr_t)"GPL";
  memcpy(attr.prog_name, POLICY_NAME, sizeof POLICY_NAME);
  int pfd;
  /* The verifier gives up with EAGAIN when a signal is pending (Node gets
   * SIGCHLD, profilers SIGPROF): retry. */
  for (int tries = 0; tries < 50; tries++) {
    pfd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    if (pfd >= 0 || (errno != EAGAIN && errno != EINTR)) break;
  }
  if (pfd < 0 && getenv("NSBOX_BPF_DEBUG")) {
    static char log[1 << 16];
    int e = errno;
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = sizeof log;
    attr.log_level = 1;
    if (syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr) < 0) fprintf(stderr, "bpf: %s\n%s\n", strerror(errno), log);
    errno = e;
  }
  if (pfd < 0) { snprintf(err, errlen, "cannot load the device policy: %s", strerror(errno)); return -1; }
  int cfd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cfd < 0) { snprintf(err, errlen, "cannot open `%s`: %s", cgroup_dir, strerror(errno)); close(pfd); return -1; }
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)cfd;
  attr.attach_bpf_fd = (uint32_t)pfd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  int r = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr);
  int e = errno;
  close(cfd);
  close(pfd);
  if (r < 0) { snprintf(err, errlen, "cannot attach the device policy to `%s`: %s", cgroup_dir, strerror(e)); return -1; }
  return 0;
}

/* ---------- the guard (runtime/native/guard.c) ---------- */

/*
 * Starts build/nsbox-guard (path given) with the read end of a fresh pipe as
 * its stdin and the entries as arguments; returns the write end (close-on-exec).
 * posix_spawn uses vfork semantics, so this costs no copy of Node's memory.
 */
int nsbox_guard(const char *exe, const char *entries, int len, int *guard_pid) {
  int pfd[2];
  char *argv[66];
  int argc = 0;
  argv[argc++] = (char *)"nsbox-guard";
  for (const char *s = entries; s < entries + len && argc < 64; s += s_len(s) + 1) argv[argc++] = (char *)s;
  argv[argc] = NULL;
  if (pipe2(pfd, O_CLOEXEC) < 0) return -errno;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  pid_t pid;
  extern char **environ;
  int r = posix_spawn(&pid, exe, &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(pfd[0]);
  if (r != 0) { close(pfd[1]); return -r; }
  /* The guard forks once and its first process exits at once; the
   * supervisor reaps it later with nsbox_reap (no waiting here). */
  *guard_pid = pid;
  return pfd[1];
}

/* ---------- sockets for activation and sd_notify relaying ---------- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/un.h>

/*
 * Creates a listening TCP socket on addr:port (addr "" = every address,
 * dual-stack, like systemd's ListenStream=PORT). Not close-on-exec: it is
 * meant to be passed on. Returns the fd or -errno.
 */
int nsbox_listen(const char *addr, int port, int backlog) {
  int fd, one = 1, zero = 0;
  if (!addr[0] || strchr(addr, ':')) {
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    if (addr[0] && inet_pton(AF_INET6, addr, &sa.sin6_addr) != 1) return -EINVAL;
    if (!addr[0]) sa.sin6_addr = in6addr_any;
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!addr[0]) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    else setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, backlog) < 0) { int e = errno; close(fd); return -e; }
    return fd;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) return -EINVAL;
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, backlog) < 0) { int e = errno; close(fd); return -e; }
  return fd;
}

/* Waits until one of fds is readable (a connection is pending) without
 * accepting it. Returns the index, -1 on timeout, or -errno. Called on a
 * worker thread (koffi async). */
int nsbox_wait_readable(const int *fds, int n, int timeout_ms) {
  struct pollfd p[64];
  if (n > 64) n = 64;
  for (int i = 0; i < n; i++) { p[i].fd = fds[i]; p[i].events = POLLIN; p[i].revents = 0; }
  int r;
  do r = poll(p, (nfds_t)n, timeout_ms); while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (r == 0) return -1;
  for (int i = 0; i < n; i++) if (p[i].revents) return i;
  return -1;
}

/* Accepts and closes every pending connection on fd (after a failed boot,
 * so waiting clients are told at once). Returns how many. */
int nsbox_drain_pending(int fd) {
  int count = 0;
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (errno == ECONNABORTED || poll(&p, 1, 0) > 0) continue;
      }
      return count;
    }
    close(c);
    count++;
  }
}

/* A datagram socket at path for sd_notify messages from the container. */
int nsbox_notify_socket(const char *path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) return -ENAMETOOLONG;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  unlink(path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(fd); return -e; }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  chmod(path, 0666);
  return fd;
}

/* Receives one message (blocking; call on a worker thread). Returns its
 * length or -errno. */
int nsbox_notify_recv(int fd, char *buf, int len) {
  ssize_t r;
  do r = recv(fd, buf, (size_t)len - 1, 0); while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  buf[r] = 0;
  return (int)r;
}

/* Sends msg to the sd_notify socket at path ('@' = abstract namespace). */
int nsbox_notify_send(const char *path, const char *msg) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n >= sizeof sa.sun_path) return -ENAMETOOLONG;
  memcpy(sa.sun_path, path, n);
  if (path[0] == '@') sa.sun_path[0] = 0;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t r = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
  int e = errno;
  close(fd);
  return r < 0 ? -e : 0;
}

int nsbox_close(int fd) { return close(fd) < 0 ? -errno : 0; }

/* ---------- user namespaces (parent side) ---------- */

/*
 * A detached clone of source's mount (open_tree), made with host root's
 * access to the path (a -U child could not reach a path under a 0700
 * directory). With idmap (mount_setattr): seen through it, files owned by
 * uid N on disk belong to uid N inside the user namespace of pid, so the
 * tree needs no chown. Returns a detached mount's fd (close-on-
 * exec) for the child to attach, or -errno with err filled: EINVAL means the
 * file system cannot idmap.
 */
int nsbox_idmap_mount(const char *source, int pid, int recursive, int readonly, int idmap, char *err, int errlen) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
  int ns = idmap ? open(path, O_RDONLY | O_CLOEXEC) : open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (ns < 0) { int e = errno; snprintf(err, errlen, "cannot open the user namespace of pid %d: %s", pid, strerror(e)); return -e; }
  int fd = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (fd < 0) { int e = errno; close(ns); snprintf(err, errlen, "cannot clone the mount of `%s`: %s", source, strerror(e)); return -e; }
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = (idmap ? MOUNT_ATTR_IDMAP : 0) | (readonly ? MOUNT_ATTR_RDONLY : 0);
  if (idmap) attr.userns_fd = (uint64_t)ns;
  int r = attr.attr_set ? (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) : 0;
  int e = errno;
  close(ns);
  if (r < 0) {
    close(fd);
    snprintf(err, errlen, "cannot make an idmapped mount of `%s`: %s", source,
             e == EINVAL ? "its file system does not support idmapped mounts" : strerror(e));
    return -e;
  }
  return fd;
}

static int probe_child(void *arg) {
  char c;
  int *pfd = arg;
  /* our copy of the write end goes, so a parent killed meanwhile means EOF */
  close(pfd[1]);
  ssize_t r = read(pfd[0], &c, 1);
  (void)r;
  syscall(SYS_exit, 0);
  return 0;
}

/*
 * Whether source's file system takes idmapped mounts, asked of the kernel
 * before anything is started: a throw-away user namespace (a child that only
 * waits on a pipe) and an idmapped clone of source that is dropped at once.
 * Returns 0, or -errno (EINVAL: the file system cannot), or -(0x10000 +
 * errno) when the kernel creates no user namespace at all.
 */
int nsbox_idmap_probe(const char *source) {
  static char stack[16384] __attribute__((aligned(16)));
  int pfd[2];
  sigset_t all, saved;
  char err[256];
  if (pipe2(pfd, O_CLOEXEC) < 0) return -errno;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = clone(probe_child, stack + sizeof stack, CLONE_NEWUSER | CLONE_VM | SIGCHLD, pfd);
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  /* -(0x10000 + errno): the kernel refused the user namespace itself */
  if (pid < 0) { close(pfd[0]); close(pfd[1]); return -(0x10000 + e); }
  char path[64];
  int r = 0;
  for (int k = 0; k < 2 && !r; k++) {
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, k ? "gid_map" : "uid_map");
    int mfd = open(path, O_WRONLY | O_CLOEXEC);
    if (mfd < 0 || write(mfd, "0 65534 1\n", 10) != 10) r = -errno;
    if (mfd >= 0) close(mfd);
  }
  if (!r) {
    int fd = nsbox_idmap_mount(source, (int)pid, 0, 0, 1, err, sizeof err);
    if (fd >= 0) close(fd); else r = fd;
  }
  close(pfd[1]); /* EOF lets the child go */
  while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {}
  close(pfd[0]);
  return r;
}

/* The host's sysfs as a detached read-only mount (fsopen/fsmount) for a -U
 * child without its own network: sysfs can only be mounted by the user
 * namespace that owns the network namespace, the host's here. */
int nsbox_sysfs_mount(char *err, int errlen) {
  int fs = (int)syscall(SYS_fsopen, "sysfs", FSOPEN_CLOEXEC);
  if (fs < 0) { int e = errno; snprintf(err, errlen, "cannot open sysfs: %s", strerror(e)); return -e; }
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) { int e = errno; close(fs); snprintf(err, errlen, "cannot create a sysfs mount: %s", strerror(e)); return -e; }
  int m = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  int e = errno;
  close(fs);
  if (m < 0) { snprintf(err, errlen, "cannot mount sysfs: %s", strerror(e)); return -e; }
  return m;
}

/*
 * Takes the lock file of a uid range (flock, exclusive, not waiting) and
 * writes token into it; returns the fd, -EBUSY if another process holds it.
 * A file a cleaner unlinked between our open and flock is not ours: retry.
 */
int nsbox_lock_file(const char *path, const char *token) {
  for (int tries = 0; tries < 10; tries++) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) { int e = errno; close(fd); return e == EWOULDBLOCK ? -EBUSY : -e; }
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
      size_t n = strlen(token);
      if (ftruncate(fd, 0) < 0 || pwrite(fd, token, n, 0) != (ssize_t)n) { int e = errno; close(fd); return -e; }
      return fd;
    }
    close(fd);
  }
  return -EAGAIN;
}

/* 1 if some process holds a lock on path (e.g. systemd-nspawn's
 * /run/systemd/nspawn-uid/UID), 0 if not or if there is no such file. */
int nsbox_lock_probe(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  int r = flock(fd, LOCK_SH | LOCK_NB);
  int e = errno;
  close(fd);
  return r < 0 && e == EWOULDBLOCK;
}

/* ---------- the chown pass of --private-users-ownership=chown ---------- */

/* While the pass runs the tree's root is owned by this base, so an
 * interrupted pass is recognized and redone (nspawn's UID_BUSY_BASE). */
#define UID_BUSY_BASE 0xFFFE0000U

struct chown_walk { uint32_t shift; dev_t dev; char *err; int errlen; };

static uint32_t shifted(uint32_t id, uint32_t shift) { return shift + (id & 0xFFFFU); }

/* A POSIX ACL xattr: header (version 2), then entries of tag(16) perm(16) id(32);
 * named users (2) and groups (8) carry ids to shift. */
static void patch_acl(int fd, const char *name, uint32_t shift) {
  unsigned char buf[4096];
  ssize_t n = fgetxattr(fd, name, buf, sizeof buf);
  if (n < 4 || (n - 4) % 8) return;
  int changed = 0;
  for (ssize_t off = 4; off + 8 <= n; off += 8) {
    uint16_t tag;
    uint32_t id;
    memcpy(&tag, buf + off, 2);
    memcpy(&id, buf + off + 4, 4);
    if (tag != 2 && tag != 8) continue;
    uint32_t nid = shifted(id, shift);
    if (nid != id) { memcpy(buf + off + 4, &nid, 4); changed = 1; }
  }
  if (changed) (void)fsetxattr(fd, name, buf, (size_t)n, 0);
}

/* Shifts one inode (dirfd/name, not followed); chown clears set-id bits and
 * file capabilities, so both are put back (capabilities as version 3 with
 * the shifted root: version 2 ones would not apply inside the namespace). */
static int patch_inode(struct chown_walk *w, int dirfd, const char *name, const struct stat *st, uint32_t uid, uint32_t gid) {
  int fd = -1;
  unsigned char cap[24];
  ssize_t caplen = -1;
  if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)) {
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (S_ISDIR(st->st_mode) ? O_DIRECTORY : 0));
    if (fd >= 0 && S_ISREG(st->st_mode)) caplen = fgetxattr(fd, "security.capability", cap, sizeof cap);
  }
  if ((st->st_uid != uid || st->st_gid != gid) && fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    snprintf(w->err, w->errlen, "cannot chown `%s`: %s", name, strerror(e));
    return -e;
  }
  if (fd >= 0) {
    if (!S_ISLNK(st->st_mode) && (st->st_mode & 07000)) (void)fchmod(fd, st->st_mode & 07777);
    if (caplen >= 20) {
      uint32_t magic = VFS_CAP_REVISION_3 | (cap[0] & VFS_CAP_FLAGS_EFFECTIVE);
      memcpy(cap, &magic, 4);
      uint32_t root = w->shift;
      memcpy(cap + 20, &root, 4);
      (void)fsetxattr(fd, "security.capability", cap, 24, 0);
    }
    patch_acl(fd, "system.posix_acl_access", w->shift);
    if (S_ISDIR(st->st_mode)) patch_acl(fd, "system.posix_acl_default", w->shift);
    close(fd);
  }
  return 0;
}

static int chown_dir(struct chown_walk *w, int dirfd, int depth) {
  if (depth > 256) { snprintf(w->err, w->errlen, "cannot chown the tree: directories nested too deep"); return -ELOOP; }
  int dup = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
  if (!d) { int e = errno; if (dup >= 0) close(dup); snprintf(w->err, w->errlen, "cannot read a directory of the tree: %s", strerror(e)); return -e; }
  struct dirent *de;
  int r = 0;
  while (!r && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (st.st_dev != w->dev) continue; /* another file system mounted inside: not the tree's */
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) { r = chown_dir(w, sub, depth + 1); close(sub); }
    }
    if (!r) r = patch_inode(w, dirfd, de->d_name, &st, shifted(st.st_uid, w->shift), shifted(st.st_gid, w->shift));
  }
  closedir(d);
  return r;
}

/*
 * Shifts every owner in the tree at path to shift + (id & 0xFFFF), as
 * nspawn's --private-users-ownership=chown does (shift 0 undoes it), and
 * records the shift as the owner of the tree's root, which is changed first
 * to UID_BUSY_BASE and last to the shift. Idempotent: a pass killed half-way
 * leaves the busy owner and the next run redoes it. Returns 0 or -errno.
 */
int nsbox_chown_tree(const char *path, unsigned int shift, char *err, int errlen) {
  struct chown_walk w = { shift, 0, err, errlen };
  struct stat st;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) < 0) { int e = errno; snprintf(err, errlen, "cannot open `%s`: %s", path, strerror(e)); if (fd >= 0) close(fd); return -e; }
  w.dev = st.st_dev;
  if (fchown(fd, shifted(st.st_uid, UID_BUSY_BASE), shifted(st.st_gid, UID_BUSY_BASE)) < 0) {
    int e = errno; close(fd); snprintf(err, errlen, "cannot chown `%s`: %s", path, strerror(e)); return -e;
  }
  int r = chown_dir(&w, fd, 0);
  if (!r) {
    struct stat now;
    if (fstat(fd, &now) == 0) {
      now.st_uid = ~0U; /* the busy mark is on: always chown the root last */
      r = patch_inode(&w, fd, ".", &now, shifted(st.st_uid, shift), shifted(st.st_gid, shift));
    }
  }
  close(fd);
  return r;
}
