/* The bundle: bundle.yaml plus the files and modules it lists, shipped as
 * user-data (a gzip'd tar, or "#firstboot-bundle v1" and its base64). The
 * agent and imagegen share this code, so what imagegen writes is exactly
 * what the agent accepts. Everything is checked in memory, before
 * anything is written anywhere. */
#pragma once

#include "tar.h"
#include "diag.h"
#include "node.h"

#define BUNDLE_TEXT_MAGIC "#firstboot-bundle v1"
#define BUNDLE_YAML       "bundle.yaml"
#define BUNDLE_SIG        "bundle.yaml.sig"
/* The module a plain "#!" user-data script becomes. */
#define USER_SCRIPT_MODULE "user-script"
/* The helpers the stack modules source, beside them in the modules
 * directory and in a bundle that ships modules (modules/_lib/): not a
 * module id, which begins with a letter or a digit. */
#define MODULES_LIB_DIR "_lib"

struct bundle_file {
        char *path;   /* absolute, on the server */
        char *source; /* member of the bundle */
        unsigned mode;
        char *owner; /* "user:group", or NULL for root */
        bool absent; /* state: absent: removed from the server; no source */
        const struct node *where;
};

struct bundle_module {
        char *id;
        const struct node *inputs; /* mapping or NULL; points into doc */
        const struct node *where;
};

struct bundle {
        struct member_list members; /* bundle.yaml and .sig included */
        struct node *doc;           /* bundle.yaml */
        char *label;                /* bundle_parse()'s label, or NULL */
        char *name, *hostname, *ready_marker;
        long long serial; /* bundle.yaml's serial (replay protection), -1 when none */
        char *phone_url, *phone_token;
        struct bundle_file *files;
        size_t n_files;
        struct bundle_module *modules;
        size_t n_modules;
        bool phone_progress; /* phone_home.progress: module events too */
        bool is_script;      /* synthesized from a plain script */
        char *signed_by;     /* the key file whose signature verified, or NULL */
};

enum userdata_kind {
        USERDATA_TAR,
        USERDATA_TEXT,
        USERDATA_SCRIPT,
};

/* Limits for decoding where no firstboot.conf says max_user_data
 * (`firstboot validate`): the decompressed size, and the member count. */
#define BUNDLE_MAX_TOTAL   (64u * 1024 * 1024)
#define BUNDLE_MAX_MEMBERS 4096

/* Recognizes user-data and turns it into bundle members: a gzip'd tar, the
 * base64 text form, or a "#!" script (a one-module bundle is made for it).
 * Anything else is an error that names what was found. origin names the
 * source in messages. max_size (max_user_data) bounds the input and every
 * byte decoding makes: the base64-decoded bytes and the inflated tar with
 * all its headers and padding; beyond it the user-data is refused, naming
 * the limit, before more is inflated. */
int userdata_decode(const char *origin, const void *data, size_t len, size_t max_size,
                    enum userdata_kind *ret_kind, struct member_list *ret, struct diags *d);

/* Reads a bundle directory's regular files as members; links, devices and
 * anything outside are refused as they are in archives. */
int bundle_members_from_dir(const char *dir, struct member_list *ret, struct diags *d);

/* Parses bundle.yaml from members (taken over, also on error) and checks
 * it: the schema, every member listed in checksums with its sha256, every
 * listed member present, sources of files present. label prefixes
 * bundle.yaml in messages (e.g. a directory), and is kept in b->label for
 * messages about other members. */
int bundle_parse(struct member_list *members, const char *label, struct bundle **ret,
                 struct diags *d);

/* The bundle file entry for path (absolute, on the server), or NULL. */
const struct bundle_file *bundle_find_file(const struct bundle *b, const char *path);

/* Checks bundle.yaml.sig against every *.pub (PEM Ed25519) in keys_dir. A
 * signature that is present but verifies with no key is always refused;
 * a missing one only when required. */
int bundle_verify_signature(struct bundle *b, const char *keys_dir, bool required, struct diags *d);

/* Writes every member under dir (created 0700; files 0600, scripts 0700),
 * replacing what was there. dir is a cache of the verified user-data: a
 * stamp with bundle.yaml's sha256 (which covers every member) makes a
 * rerun of the same bundle skip the writing. dir is resolved inside the
 * root rootfd (fs.h). */
int bundle_unpack(const struct bundle *b, int rootfd, const char *dir);

void bundle_free(struct bundle *b);
static inline void bundle_freep(struct bundle **b)
{
        bundle_free(*b);
}
#define _cleanup_bundle_ __attribute__((cleanup(bundle_freep)))
