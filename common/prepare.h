/* Preparing a bundle's modules: each found (in the bundle, then in the
 * modules directory), its manifest and inputs validated, the host checked
 * against its requirements, all put in run order. `run` and `validate`
 * share it, so validate accepts exactly what run would. */
#pragma once

#include "bundle.h"
#include "manifest.h"

struct planned {
        const struct bundle_module *bm;
        struct manifest *m;
        char *dir;        /* where manifest.yml and the script are, or will be */
        bool from_bundle; /* shipped in the bundle */
        struct input_values in;
};

struct prepare_options {
        const char *root;        /* NULL for / */
        const char *modules_dir; /* on the server, resolved under root */
        const char *unpack_dir;  /* where the bundle is unpacked (module dirs), or NULL */
        bool check_host;         /* os_requirements and resource_requirements */
};

/* Fills *ret with n planned modules in run order, or reports every problem
 * in d and returns <0. */
int prepare_modules(const struct bundle *b, const struct prepare_options *o, struct planned **ret,
                    size_t *ret_n, struct diags *d);
void planned_free(struct planned *p, size_t n);
