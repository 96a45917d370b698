/* Facts about the machine that go into the controller callback. Both
 * functions return 0 and a new node in *ret, or a negative errno. */
#pragma once

#include "node.h"

/* SSH host key fingerprints: every <root>/etc/ssh/ssh_host_*_key.pub, as a
 * sequence of maps {type: "ssh-ed25519", fingerprint: "SHA256:...", file:
 * "/etc/ssh/ssh_host_ed25519_key.pub"} sorted by file name. A missing
 * directory gives an empty sequence; a file that holds no parsable public
 * key is left out (sshd could not offer it either). */
int facts_ssh_host_keys(const char *root, struct node **ret);

/* Addresses of the interfaces that are up, loopback excepted (getifaddrs):
 * a sequence of maps {interface: "eth0", family: "inet"|"inet6", address:
 * "192.0.2.10"}, in the kernel's order. IPv6 link-local addresses are
 * left out. */
int facts_addresses(struct node **ret);
