/* The provider's SSH public keys (what a server was created with at
 * Hetzner, DigitalOcean or EC2, or what a NoCloud or ConfigDrive seed
 * lists), checked strictly and merged into a user's authorized_keys, as
 * cloud-init does: without it a golden image without cloud-init would
 * lock its owner out once `base` hardens SSH. */
#pragma once

#include <stddef.h>

/* At most this many keys from one source, each line at most this long. */
#define SSHKEYS_MAX     100
#define SSHKEY_MAX_LINE 16384

/* Checks one public key line: "TYPE BASE64 [COMMENT]", TYPE one of
 * ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521,
 * sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com; the
 * base64 must decode (strictly) to a key blob of that type with the
 * fields the type has and nothing after; the comment is optional and
 * printable. Nothing before the type (no authorized_keys options such as
 * command="..."), no control character anywhere (no newline can smuggle
 * a second line in). Leading and trailing blanks are dropped and blanks
 * between the fields folded into one space. Returns 0 and *ret the line;
 * -EBADMSG with *ret_why (a static string) saying what is wrong; -ENOMEM. */
int sshkey_parse(const char *text, char **ret, const char **ret_why);

/* Merges keys (lines sshkey_parse() accepted, NULL-terminated) into the
 * authorized_keys of user (a name in <root>/etc/passwd) under root: HOME
 * from passwd, HOME/.ssh made 0700 and the file 0600, both owned by the
 * user; a key already there (the same type and base64, whatever its
 * comment or options) is not added again, lines already there are kept
 * as they are. The file is written atomically. Returns the number of keys
 * added (0: nothing changed), or a negative errno with *ret_error (when
 * not NULL) saying why: -ESRCH no such user, -ENOTDIR/-ELOOP a .ssh or
 * authorized_keys that is a link or not a directory/file. Every path
 * resolves inside rootfd (the root as a descriptor, fs.h): a home that
 * is a link is followed only inside the root. */
int sshkeys_install(int rootfd, const char *root, const char *user, char *const *keys,
                    char **ret_error);
