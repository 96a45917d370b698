/* `firstboot plan`: what applying a bundle to this instance would change,
 * doing nothing. run.c verifies the bundle and decides the modules
 * exactly as a run would, then hands the outcome here to be compared with
 * the system and shown. */
#pragma once

#include <stdbool.h>

#include "bundle.h"
#include "prepare.h"

struct change_input {
        int rootfd;                 /* the system, as fs.h's root_* calls see it */
        const struct bundle *b;     /* verified */
        const struct planned *mods; /* in run order */
        size_t n_mods;
        const bool *to_run;      /* mods[i] would run */
        char *const *why;        /* and why (or why not) */
        const char *hostname;    /* /etc/hostname a run would write, or NULL */
        const char *last_bundle; /* bundle.yaml last applied here (under the root), or NULL */
        const char *instance_id;
        long long last_serial; /* -1: none applied */
        bool same_bundle;      /* bundle.yaml is the one last applied */
        bool json;
};

/* Prints the plan on stdout. Returns 0 when applying would change nothing,
 * 2 when it would, or a negative errno. A changed text file is shown as a
 * unified diff (diff(1), from Debian's essential diffutils) unless it may
 * hold a secret: its mode lets no other user read it, or it holds a
 * sensitive input's value or the callback token; then "content changed". */
int change_show(const struct change_input *in);
