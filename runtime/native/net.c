/*
 * nsbox network helper: a small rtnetlink client for the host side of
 * --network-veth, --network-bridge, --network-zone, --network-macvlan,
 * --network-ipvlan and --network-interface, plus the clean-up that both the
 * supervisor and the guard run (one implementation for the normal and the
 * kill -9 path). Linked into libnsbox.so (called through koffi from
 * runtime/net/) and into nsbox-guard.
 *
 * Netlink instead of spawning ip(8): one request costs microseconds, an
 * `ip` process a few milliseconds each, and a veth container needs five or
 * six of them. Policy lives in TypeScript; these are mechanisms only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net.h"

#ifndef IFLA_IPVLAN_MODE
#define IFLA_IPVLAN_MODE 1
#endif

/* ---------- message building ---------- */

struct req {
  union { struct nlmsghdr h; char raw[4096]; };
};

static void *tail(struct req *r) { return r->raw + NLMSG_ALIGN(r->h.nlmsg_len); }

static struct rtattr *put_attr(struct req *r, int type, const void *data, size_t len) {
  struct rtattr *a = tail(r);
  a->rta_type = (unsigned short)type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
  return a;
}
static void put_str(struct req *r, int type, const char *s) { put_attr(r, type, s, strlen(s) + 1); }
static void put_u32(struct req *r, int type, uint32_t v) { put_attr(r, type, &v, sizeof v); }
static struct rtattr *nest(struct req *r, int type) { return put_attr(r, type, NULL, 0); }
static void end_nest(struct req *r, struct rtattr *a) { a->rta_len = (unsigned short)((char *)tail(r) - (char *)a); }

static void new_link_req(struct req *r, int type, int flags, int ifindex) {
  memset(r, 0, sizeof *r);
  r->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  r->h.nlmsg_type = (unsigned short)type;
  r->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
  struct ifinfomsg *ifi = NLMSG_DATA(&r->h);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
}

static int nl_open(void) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -errno;
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(s); return -e; }
  return s;
}

/* Sends one request and waits for its ack: 0 or -errno. */
static int nl_call(int s, struct req *r) {
  static uint32_t seq;
  r->h.nlmsg_seq = ++seq;
  if (send(s, &r->h, r->h.nlmsg_len, 0) < 0) return -errno;
  char buf[8192];
  for (;;) {
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) { if (errno == EINTR) continue; return -errno; }
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != r->h.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    }
  }
}

/* One request on a fresh socket. */
static int call1(struct req *r) {
  int s = nl_open();
  if (s < 0) return s;
  int e = nl_call(s, r);
  close(s);
  return e;
}

/* ---------- link operations (exported) ---------- */

/* The kernel takes IFLA_IFALIAS on a change, not on creation. */
static void set_alias(int ifindex, const char *alias) {
  struct req r;
  if (!alias || !*alias) return;
  new_link_req(&r, RTM_NEWLINK, 0, ifindex);
  put_attr(&r, IFLA_IFALIAS, alias, strlen(alias));
  (void)call1(&r);
}

/*
 * Creates a veth pair: `host` here, `peer` in the network namespace nsfd
 * (or here with nsfd -1), the host end's alias set (the guard deletes a link
 * only while its alias is still ours). Returns the host end's ifindex.
 */
int nsbox_nl_veth(const char *host, const char *peer, int nsfd, const char *alias) {
  struct req r;
  new_link_req(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  put_str(&r, IFLA_IFNAME, host);
  struct rtattr *li = nest(&r, IFLA_LINKINFO);
  put_str(&r, IFLA_INFO_KIND, "veth");
  struct rtattr *data = nest(&r, IFLA_INFO_DATA);
  struct rtattr *pe = nest(&r, VETH_INFO_PEER);
  struct ifinfomsg pifi = { .ifi_family = AF_UNSPEC };
  /* the peer's ifinfomsg header comes first inside VETH_INFO_PEER */
  memcpy(tail(&r), &pifi, sizeof pifi);
  r.h.nlmsg_len += NLMSG_ALIGN(sizeof pifi);
  put_str(&r, IFLA_IFNAME, peer);
  if (nsfd >= 0) put_u32(&r, IFLA_NET_NS_FD, (uint32_t)nsfd);
  end_nest(&r, pe);
  end_nest(&r, data);
  end_nest(&r, li);
  int e = call1(&r);
  if (e < 0) return e;
  int idx = (int)if_nametoindex(host);
  if (idx <= 0) return -errno;
  set_alias(idx, alias);
  return idx;
}

/*
 * Creates a link of `kind` ("bridge", "macvlan", "ipvlan"): on top of
 * `parent` (ifindex, 0 for none), in namespace nsfd (-1: here), with alias.
 * macvlan gets bridge mode and ipvlan L2, as nspawn does. Returns 0 or -errno.
 */
int nsbox_nl_newlink(const char *kind, const char *name, int parent, int nsfd, const char *alias) {
  struct req r;
  new_link_req(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  put_str(&r, IFLA_IFNAME, name);
  if (parent > 0) put_u32(&r, IFLA_LINK, (uint32_t)parent);
  if (nsfd >= 0) put_u32(&r, IFLA_NET_NS_FD, (uint32_t)nsfd);
  struct rtattr *li = nest(&r, IFLA_LINKINFO);
  put_str(&r, IFLA_INFO_KIND, kind);
  if (!strcmp(kind, "macvlan")) {
    struct rtattr *d = nest(&r, IFLA_INFO_DATA);
    put_u32(&r, IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE);
    end_nest(&r, d);
  } else if (!strcmp(kind, "ipvlan")) {
    struct rtattr *d = nest(&r, IFLA_INFO_DATA);
    uint16_t mode = 0; /* IPVLAN_MODE_L2 */
    put_attr(&r, IFLA_IPVLAN_MODE, &mode, sizeof mode);
    end_nest(&r, d);
  }
  end_nest(&r, li);
  int e = call1(&r);
  if (e < 0 || nsfd >= 0) return e;
  int idx = (int)if_nametoindex(name);
  if (idx > 0) set_alias(idx, alias);
  return 0;
}

/*
 * Changes a link (by ifindex): up (1) or leave (0), master ifindex (>0) or
 * leave (0), move to namespace nsfd (>=0) with an optional new name.
 */
int nsbox_nl_setlink(int ifindex, int up, int master, int nsfd, const char *newname) {
  struct req r;
  new_link_req(&r, RTM_NEWLINK, 0, ifindex);
  struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
  if (up) { ifi->ifi_flags = IFF_UP; ifi->ifi_change = IFF_UP; }
  if (master > 0) put_u32(&r, IFLA_MASTER, (uint32_t)master);
  if (nsfd >= 0) put_u32(&r, IFLA_NET_NS_FD, (uint32_t)nsfd);
  if (newname && *newname) put_str(&r, IFLA_IFNAME, newname);
  return call1(&r);
}

/* Adds an IPv4 address with its prefix length to a link. */
int nsbox_nl_addaddr(int ifindex, const char *addr, int prefix) {
  struct req r;
  struct in_addr a;
  if (inet_pton(AF_INET, addr, &a) != 1) return -EINVAL;
  memset(&r, 0, sizeof r);
  r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  r.h.nlmsg_type = RTM_NEWADDR;
  r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  struct ifaddrmsg *ifa = NLMSG_DATA(&r.h);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (unsigned char)prefix;
  ifa->ifa_index = (unsigned)ifindex;
  put_attr(&r, IFA_LOCAL, &a, sizeof a);
  put_attr(&r, IFA_ADDRESS, &a, sizeof a);
  struct in_addr b = a;
  if (prefix < 31) b.s_addr = htonl(ntohl(a.s_addr) | (prefix ? (0xffffffffu >> prefix) : 0xffffffffu));
  if (prefix < 31) put_attr(&r, IFA_BROADCAST, &b, sizeof b);
  return call1(&r);
}

int nsbox_nl_dellink(int ifindex) {
  struct req r;
  new_link_req(&r, RTM_DELLINK, 0, ifindex);
  return call1(&r);
}

/* ---------- dumps ---------- */

static int dump(int s, int type, int family, void (*each)(struct nlmsghdr *, void *), void *ctx) {
  struct { struct nlmsghdr h; struct rtgenmsg g; } q;
  memset(&q, 0, sizeof q);
  q.h.nlmsg_len = sizeof q;
  q.h.nlmsg_type = (unsigned short)type;
  q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  q.h.nlmsg_seq = 1;
  q.g.rtgen_family = (unsigned char)family;
  if (send(s, &q, sizeof q, 0) < 0) return -errno;
  static char buf[32768];
  for (;;) {
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) { if (errno == EINTR) continue; return -errno; }
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
      each(h, ctx);
    }
  }
}

struct out { char *p, *end; };

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->p, (size_t)(o->end - o->p), fmt, ap);
  va_end(ap);
  if (n > 0 && o->p + n < o->end) o->p += n;
}

static void each_link(struct nlmsghdr *h, void *ctx) {
  struct ifinfomsg *ifi = NLMSG_DATA(h);
  const char *name = "", *kind = "", *alias = "";
  uint32_t master = 0;
  char aliasbuf[256] = "";
  int len = (int)IFLA_PAYLOAD(h);
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_IFNAME) name = RTA_DATA(a);
    else if (a->rta_type == IFLA_MASTER) master = *(uint32_t *)RTA_DATA(a);
    else if (a->rta_type == IFLA_IFALIAS) {
      size_t l = RTA_PAYLOAD(a) < sizeof aliasbuf - 1 ? RTA_PAYLOAD(a) : sizeof aliasbuf - 1;
      memcpy(aliasbuf, RTA_DATA(a), l);
      aliasbuf[l] = 0;
      alias = aliasbuf;
    } else if (a->rta_type == IFLA_LINKINFO) {
      int l2 = (int)RTA_PAYLOAD(a);
      for (struct rtattr *b = RTA_DATA(a); RTA_OK(b, l2); b = RTA_NEXT(b, l2))
        if (b->rta_type == IFLA_INFO_KIND) kind = RTA_DATA(b);
    }
  }
  emit(ctx, "link\t%d\t%s\t%s\t%u\t%u\t%s\n", ifi->ifi_index, name, *kind ? kind : "-", master, ifi->ifi_flags, alias);
}

static void each_addr(struct nlmsghdr *h, void *ctx) {
  struct ifaddrmsg *ifa = NLMSG_DATA(h);
  if (ifa->ifa_family != AF_INET) return;
  int len = (int)IFA_PAYLOAD(h);
  char s[INET_ADDRSTRLEN] = "";
  for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == IFA_LOCAL) inet_ntop(AF_INET, RTA_DATA(a), s, sizeof s);
  if (*s) emit(ctx, "addr\t%u\t%s\t%u\n", ifa->ifa_index, s, ifa->ifa_prefixlen);
}

static void each_route(struct nlmsghdr *h, void *ctx) {
  struct rtmsg *rt = NLMSG_DATA(h);
  if (rt->rtm_family != AF_INET) return;
  int len = (int)RTM_PAYLOAD(h);
  char s[INET_ADDRSTRLEN] = "0.0.0.0";
  for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len))
    if (a->rta_type == RTA_DST) inet_ntop(AF_INET, RTA_DATA(a), s, sizeof s);
  emit(ctx, "route\t%s\t%u\t%u\n", s, rt->rtm_dst_len, rt->rtm_table);
}

/*
 * Dumps the links, IPv4 addresses and IPv4 routes (every table) of this
 * network namespace as tab-separated lines into buf. Returns the length or
 * -errno. TypeScript parses it (runtime/net/host.ts).
 */
int nsbox_nl_dump(char *buf, int len) {
  struct out o = { buf, buf + len };
  buf[0] = 0;
  int s = nl_open();
  if (s < 0) return s;
  int e = dump(s, RTM_GETLINK, AF_UNSPEC, each_link, &o);
  if (!e) e = dump(s, RTM_GETADDR, AF_INET, each_addr, &o);
  if (!e) e = dump(s, RTM_GETROUTE, AF_INET, each_route, &o);
  close(s);
  return e < 0 ? e : (int)(o.p - buf);
}

/* ---------- small host helpers ---------- */

/* An exclusive lock on path (created), held until the fd is closed. The
 * holder may remove the file (its state directory is pruned when empty):
 * a lock taken on a file that is no longer at path is retried. */
int nsbox_flock(const char *path) {
  for (int tries = 0; tries < 100; tries++) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    while (flock(fd, LOCK_EX) < 0) {
      if (errno != EINTR) { int e = errno; close(fd); return -e; }
    }
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) return fd;
    close(fd);
  }
  return -EAGAIN;
}

/* 0 if nothing on this host holds the port (TCP or UDP, any address), else -errno (EADDRINUSE). */
int nsbox_port_free(int udp, int port) {
  int type = (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, zero = 0;
  int fd = socket(AF_INET6, type, 0);
  if (fd >= 0) {
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_ANY_INIT };
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (r == 0) return 0;
    if (e != EAFNOSUPPORT && e != EADDRNOTAVAIL) return -e;
  }
  fd = socket(AF_INET, type, 0);
  if (fd < 0) return -errno;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  close(fd);
  return r == 0 ? 0 : -e;
}

/* Writes value to a /proc/sys file; 0 or -errno. */
int nsbox_sysctl_set(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, value, strlen(value));
  int e = errno;
  close(fd);
  return n < 0 ? -e : 0;
}

/* Runs `nft -f -` with script on stdin; returns its exit status (or -errno). */
static int run_nft(const char *script) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return -errno;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[0], 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  char *argv[] = { (char *)"nft", (char *)"-f", (char *)"-", NULL };
  char *envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
  pid_t pid;
  int r = posix_spawnp(&pid, "nft", &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(p[0]);
  if (r != 0) { close(p[1]); return -r; }
  size_t len = strlen(script), off = 0;
  signal(SIGPIPE, SIG_IGN);
  while (off < len) {
    ssize_t w = write(p[1], script + off, len - off);
    if (w < 0) { if (errno == EINTR) continue; break; }
    off += (size_t)w;
  }
  close(p[1]);
  int st;
  while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) return -errno;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---------- clean-up shared by the supervisor and the guard ---------- */

struct linkinfo { int index; uint32_t master; char name[IFNAMSIZ]; char alias[256]; };
struct links { struct linkinfo l[256]; int n; };

static void collect_link(struct nlmsghdr *h, void *ctx) {
  struct links *ls = ctx;
  if (ls->n >= 256) return;
  struct ifinfomsg *ifi = NLMSG_DATA(h);
  struct linkinfo *li = &ls->l[ls->n++];
  memset(li, 0, sizeof *li);
  li->index = ifi->ifi_index;
  int len = (int)IFLA_PAYLOAD(h);
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_IFNAME) snprintf(li->name, sizeof li->name, "%s", (char *)RTA_DATA(a));
    else if (a->rta_type == IFLA_MASTER) li->master = *(uint32_t *)RTA_DATA(a);
    else if (a->rta_type == IFLA_IFALIAS) {
      size_t l = RTA_PAYLOAD(a) < sizeof li->alias - 1 ? RTA_PAYLOAD(a) : sizeof li->alias - 1;
      memcpy(li->alias, RTA_DATA(a), l);
    }
  }
}

static int list_links(struct links *ls) {
  ls->n = 0;
  int s = nl_open();
  if (s < 0) return s;
  int e = dump(s, RTM_GETLINK, AF_UNSPEC, collect_link, ls);
  close(s);
  return e;
}

static struct linkinfo *find_link(struct links *ls, const char *name) {
  for (int i = 0; i < ls->n; i++) if (!strcmp(ls->l[i].name, name)) return &ls->l[i];
  return NULL;
}

/* Splits "a\tb\tc" in place into at most n fields. */
static int fields(char *s, char **f, int n) {
  int k = 0;
  while (k < n) {
    f[k++] = s;
    char *t = strchr(s, '\t');
    if (!t) break;
    *t = 0;
    s = t + 1;
  }
  return k;
}

/* Moves an interface out of the container's namespace (nsfd) back here. */
static void move_back(int nsfd, const char *idx_s, const char *name) {
  if (nsfd < 0) return;
  int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (here < 0) return;
  /* a netlink socket created inside the container's namespace talks to it */
  if (setns(nsfd, CLONE_NEWNET) < 0) { close(here); return; }
  int s = nl_open();
  (void)setns(here, CLONE_NEWNET);
  if (s >= 0) {
    struct req r;
    int ifindex = atoi(idx_s);
    new_link_req(&r, RTM_NEWLINK, 0, ifindex);
    put_u32(&r, IFLA_NET_NS_FD, (uint32_t)here);
    put_str(&r, IFLA_IFNAME, name);
    int e = nl_call(s, &r);
    if (e == -ENODEV) {
      /* renamed or renumbered inside: look it up by name there */
      new_link_req(&r, RTM_NEWLINK, 0, 0);
      put_str(&r, IFLA_IFNAME, name);
      put_u32(&r, IFLA_NET_NS_FD, (uint32_t)here);
      (void)nl_call(s, &r);
    }
    close(s);
  }
  close(here);
}

/* Whether any process named by a "<pid>-<token>" entry in dir is alive. */
static int refs_alive(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int alive = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !strcmp(e->d_name, "orig")) continue;
    long pid = strtol(e->d_name, NULL, 10);
    if (pid > 0 && kill((pid_t)pid, 0) == 0) alive = 1;
    else {
      char p[4096];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p); /* a dead owner's reference */
    }
  }
  closedir(d);
  return alive;
}

static void prune_state(const char *dir);

/*
 * Undoes a container's network set-up from entries (one per string):
 *   M<ifindex>\t<name>          move an interface from namespace nsfd back here
 *   L<name>\t<alias>            delete link <name> if its alias is still <alias>
 *   Z<bridge>\t<lock>\t<lease>  delete a zone bridge once it has no ports (under lock), and its lease file
 *   N<table>                    nft delete table ip <table>
 *   F<refdir>\t<ref>\t<lock>    drop this container's reference to IPv4 forwarding; the last one
 *                               restores net.ipv4.ip_forward from <refdir>/orig and deletes table ip nsbox-forward
 *   f<file>\t<token>            remove a file that still holds token (a lease or a port claim)
 *   P<dir>                      remove the state directory dir (lock, leases/, ports/, forward/) once empty
 * in that order of kinds, whatever their order in the list. Other kinds are ignored.
 */
void nsbox_net_cleanup_argv(int n, char **entries, int nsfd) {
  char buf[4096], *f[4];
  for (int i = 0; i < n; i++) {
    if (entries[i][0] != 'M') continue;
    snprintf(buf, sizeof buf, "%s", entries[i] + 1);
    if (fields(buf, f, 2) == 2) move_back(nsfd, f[0], f[1]);
  }
  struct links ls;
  if (list_links(&ls) == 0) {
    for (int i = 0; i < n; i++) {
      if (entries[i][0] != 'L') continue;
      snprintf(buf, sizeof buf, "%s", entries[i] + 1);
      if (fields(buf, f, 2) != 2) continue;
      struct linkinfo *li = find_link(&ls, f[0]);
      if (li && !strcmp(li->alias, f[1])) nsbox_nl_dellink(li->index);
    }
  }
  for (int i = 0; i < n; i++) {
    if (entries[i][0] != 'Z') continue;
    snprintf(buf, sizeof buf, "%s", entries[i] + 1);
    if (fields(buf, f, 3) != 3) continue;
    int lk = nsbox_flock(f[1]);
    if (list_links(&ls) == 0) {
      struct linkinfo *br = find_link(&ls, f[0]);
      int ports = 0;
      if (br) for (int k = 0; k < ls.n; k++) if (ls.l[k].master == (uint32_t)br->index) ports++;
      if (br && !ports) nsbox_nl_dellink(br->index);
      if (!br || !ports) unlink(f[2]);
    }
    if (lk >= 0) close(lk);
  }
  for (int i = 0; i < n; i++) {
    if (entries[i][0] != 'N') continue;
    snprintf(buf, sizeof buf, "delete table ip %s\n", entries[i] + 1);
    (void)run_nft(buf);
  }
  for (int i = 0; i < n; i++) {
    if (entries[i][0] != 'F') continue;
    snprintf(buf, sizeof buf, "%s", entries[i] + 1);
    if (fields(buf, f, 3) != 3) continue;
    int lk = nsbox_flock(f[2]);
    char p[4096], orig[16] = "";
    snprintf(p, sizeof p, "%s/%s", f[0], f[1]);
    unlink(p);
    if (!refs_alive(f[0])) {
      snprintf(p, sizeof p, "%s/orig", f[0]);
      int fd = open(p, O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ssize_t r = read(fd, orig, sizeof orig - 1);
        close(fd);
        if (r > 0) {
          orig[r] = 0;
          (void)nsbox_sysctl_set("/proc/sys/net/ipv4/ip_forward", orig);
          (void)run_nft("delete table ip nsbox-forward\n");
        }
        unlink(p);
      }
    }
    if (lk >= 0) close(lk);
  }
  for (int i = 0; i < n; i++) {
    if (entries[i][0] != 'f') continue;
    snprintf(buf, sizeof buf, "%s", entries[i] + 1);
    if (fields(buf, f, 2) != 2) continue;
    char content[512];
    int fd = open(f[0], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    ssize_t r = read(fd, content, sizeof content - 1);
    close(fd);
    if (r <= 0) continue;
    content[r] = 0;
    if (strstr(content, f[1])) unlink(f[0]);
  }
  for (int i = 0; i < n; i++) if (entries[i][0] == 'P') prune_state(entries[i] + 1);
}

static int dir_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d) return errno == ENOENT;
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d))) if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = 0; break; }
  closedir(d);
  return empty;
}

/* Prunes a network namespace's state directory when nothing is left in it.
 * Under its lock; nsbox_flock retries when the file it locked was removed. */
static void prune_state(const char *dir) {
  static const char *subs[] = { "leases", "ports", "forward" };
  char p[4096];
  snprintf(p, sizeof p, "%s/lock", dir);
  int lk = nsbox_flock(p);
  if (lk < 0) return;
  int empty = 1;
  for (int i = 0; i < 3; i++) { snprintf(p, sizeof p, "%s/%s", dir, subs[i]); if (!dir_empty(p)) empty = 0; }
  if (empty) {
    for (int i = 0; i < 3; i++) { snprintf(p, sizeof p, "%s/%s", dir, subs[i]); rmdir(p); }
    snprintf(p, sizeof p, "%s/lock", dir);
    unlink(p);
    rmdir(dir);
  }
  close(lk);
}

/* The same from a NUL-separated buffer (koffi). */
void nsbox_net_cleanup(const char *entries, int len, int nsfd) {
  char *argv[128];
  int n = 0;
  for (const char *s = entries; s < entries + len && n < 128; s += strlen(s) + 1) argv[n++] = (char *)s;
  nsbox_net_cleanup_argv(n, argv, nsfd);
}

/*
 * Starts nsbox-guard for a container's network: like nsbox_guard (spawn.c)
 * but the container's network namespace nsfd becomes the guard's fd 3, so
 * that it can still move interfaces back out after the container died.
 */
int nsbox_net_guard(const char *exe, const char *entries, int len, int nsfd, int *guard_pid) {
  int pfd[2];
  char *argv[130];
  int argc = 0;
  argv[argc++] = (char *)"nsbox-guard";
  for (const char *s = entries; s < entries + len && argc < 128; s += strlen(s) + 1) argv[argc++] = (char *)s;
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
  if (nsfd >= 0) posix_spawn_file_actions_adddup2(&fa, nsfd, 3);
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
  *guard_pid = pid;
  return pfd[1];
}
