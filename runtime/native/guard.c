/*
 * nsbox-guard: cleans up after a supervisor that died.
 *
 * Started by the supervisor (nsbox_guard in spawn.c) with a pipe on stdin
 * that only the supervisor holds. If the supervisor ends normally it writes
 * "x" first and the guard just exits; on EOF without it (the supervisor was
 * killed, even with SIGKILL) the guard kills what is left in the container's
 * cgroup, removes the cgroup bottom-up and the machine's registry entry.
 *
 * Arguments: "c<cgroup dir>", "f<file>\t<token>" (removed only while the
 * file still holds token, so a newer machine of the same name is safe) and
 * "t<tty path>\t<hex of a struct termios>": the user's terminal settings from
 * before the console made it raw, put back first.
 *
 * A container's network has a guard of its own (nsbox_net_guard in net.c):
 * its entries (M, L, Z, N, F and f, see nsbox_net_cleanup_argv) undo the
 * network set-up, with the container's network namespace held open as fd 3.
 *
 * For -U and overlays: "r<dir>" (a directory nsbox made for the run, e.g. an
 * overlay's work directory: removed with everything in it) and
 * "l<lock file>\t<token>" (a uid range's lock: removed only if no process
 * holds it any more and it still holds token).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "net.h"

static int rmdir_tree(int dirfd, const char *name, int depth) {
  if (depth > 64) return -1;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  char buf[8192];
  for (;;) {
    long nread = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (nread <= 0) break;
    for (long off = 0; off < nread;) {
      struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
      if (d->type == DT_DIR && strcmp(d->name, ".") && strcmp(d->name, "..")) rmdir_tree(fd, d->name, depth + 1);
      off += d->reclen;
    }
  }
  close(fd);
  return unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* rm -rf of dirfd/name, never following symbolic links or leaving the file system. */
static void remove_all(int dirfd, const char *name, dev_t dev, int depth) {
  struct stat st;
  if (depth > 256 || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return;
  if (!S_ISDIR(st.st_mode)) { unlinkat(dirfd, name, 0); return; }
  if (depth && st.st_dev != dev) return;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  char buf[8192];
  for (;;) {
    long nread = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (nread <= 0) break;
    for (long off = 0; off < nread;) {
      struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
      if (strcmp(d->name, ".") && strcmp(d->name, "..")) remove_all(fd, d->name, depth ? dev : st.st_dev, depth + 1);
      off += d->reclen;
    }
  }
  close(fd);
  unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Removes a uid range's lock file once nobody holds it and it is still ours. */
static void remove_lock(const char *s) {
  char path[4096], buf[256];
  const char *tab = strchr(s, '\t');
  if (!tab || (size_t)(tab - s) >= sizeof path) return;
  memcpy(path, s, (size_t)(tab - s));
  path[tab - s] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n > 0) { buf[n] = 0; if (!strcmp(buf, tab + 1)) unlink(path); }
  }
  close(fd);
}

static void kill_cgroup(const char *dir) {
  char path[4096], buf[4096];
  snprintf(path, sizeof path, "%s/cgroup.kill", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) { ssize_t w = write(fd, "1", 1); (void)w; close(fd); }
  /* cgroup.kill is per subtree on 5.14+; read procs for older kernels */
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  for (char *s = buf; *s;) {
    long pid = strtol(s, &s, 10);
    if (pid > 0) kill((pid_t)pid, SIGKILL);
    while (*s == '\n') s++;
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Puts the user's terminal back the way it was before the console. */
static void restore_tty(const char *s) {
  char path[4096];
  struct termios t;
  unsigned char *bytes = (unsigned char *)&t;
  const char *tab = strchr(s, '\t');
  if (!tab || (size_t)(tab - s) >= sizeof path || strlen(tab + 1) != 2 * sizeof t) return;
  memcpy(path, s, (size_t)(tab - s));
  path[tab - s] = 0;
  for (size_t i = 0; i < sizeof t; i++) {
    int hi = hexval(tab[1 + 2 * i]), lo = hexval(tab[2 + 2 * i]);
    if (hi < 0 || lo < 0) return;
    bytes[i] = (unsigned char)(hi << 4 | lo);
  }
  int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return;
  if (isatty(fd)) (void)tcsetattr(fd, TCSANOW, &t);
  close(fd);
}

static void cleanup(int argc, char **argv) {
  for (int i = 1; i < argc; i++) if (argv[i][0] == 't') restore_tty(argv[i] + 1);
  for (int round = 0; round < 100; round++) {
    int left = 0;
    for (int i = 1; i < argc; i++) {
      const char *s = argv[i];
      if (s[0] == 'c') {
        char path[4096];
        kill_cgroup(s + 1);
        const char *slash = strrchr(s + 1, '/');
        if (!slash) continue;
        size_t dl = (size_t)(slash - (s + 1));
        if (dl >= sizeof path) continue;
        memcpy(path, s + 1, dl);
        path[dl] = 0;
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) continue;
        if (rmdir_tree(dfd, slash + 1, 0) < 0 && errno != ENOENT) left = 1;
        close(dfd);
      } else if (s[0] == 'f') {
        char path[4096], buf[4096];
        const char *tab = strchr(s + 1, '\t');
        if (!tab || (size_t)(tab - (s + 1)) >= sizeof path) continue;
        memcpy(path, s + 1, (size_t)(tab - (s + 1)));
        path[tab - (s + 1)] = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        if (strstr(buf, tab + 1)) unlink(path);
      } else if (s[0] == 'r' && s[1] == '/') {
        remove_all(AT_FDCWD, s + 1, 0, 0);
      } else if (s[0] == 'l') {
        remove_lock(s + 1);
      }
    }
    if (!left) return;
    usleep(50000);
  }
}

int main(int argc, char **argv) {
  /* Detach: the first process exits at once so the supervisor can reap it. */
  pid_t pid = fork();
  if (pid != 0) return pid < 0 ? 1 : 0;
  for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_IGN);
  char c = 0;
  for (;;) {
    ssize_t r = read(0, &c, 1);
    if (r == 1 && c == 'x') return 0; /* the supervisor cleaned up itself */
    if (r == 0 || (r < 0 && errno != EINTR)) break;
  }
  cleanup(argc, argv);
  /* network entries; fd 3 is the container's network namespace when given */
  nsbox_net_cleanup_argv(argc - 1, argv + 1, fcntl(3, F_GETFD) >= 0 ? 3 : -1);
  return 0;
}
