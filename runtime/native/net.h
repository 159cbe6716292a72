/* The network helper (net.c), shared by libnsbox.so and nsbox-guard. */
#ifndef NSBOX_NET_H
#define NSBOX_NET_H
void nsbox_net_cleanup_argv(int n, char **entries, int nsfd);
#endif
