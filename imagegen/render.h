/* From a loaded site to the bundle, in memory: templates rendered, files
 * read, TLS material issued or reused, modules copied, bundle.yaml with
 * every member's sha256, signed when the site has a key. Nothing is
 * written but the site's own state (PKI under state_dir). The result is
 * parsed back with the agent's bundle code before it is returned, so a
 * bundle imagegen makes is one firstboot accepts. */
#pragma once

#include "tar.h"
#include "diag.h"
#include "site.h"

struct render_options {
        const char *state_dir; /* SITE_DIR/.imagegen: pki/ lives there */
        bool quiet;            /* no notes on stderr (TLS reused/renewed, ...) */
        /* The site's state: bundle.yaml's serial is kept there, raised
         * when what is rendered changed (replay protection on the agent).
         * NULL: no serial. */
        struct secrets *state;
};

int render_bundle(const struct site *s, const struct render_options *o, struct member_list *ret,
                  struct diags *d);

/* The state key under which s's bundle serial is kept: "bundle", or
 * "<hostname>/bundle" for a fleet's host (its secret_pfx). */
char *render_serial_key(const struct site *s);

/* Writes members under dir, replacing it as a whole: everything goes to a
 * new sibling directory first, which is renamed into place at the end, so
 * a failure leaves the old dir (or none) and no partial one. A dir that
 * already holds exactly the members (files, bytes, modes, nothing else) is
 * left as it is: rendering again changes no file, not even its mtime. */
int write_bundle_dir(const struct member_list *members, const char *dir, char **err);
