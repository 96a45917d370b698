/* Libraries loaded when first needed (libcurl, libarchive, libsystemd,
 * libcrypto), so that a process that does not use one does not pay for it
 * and its dependencies at start-up. A user lists its functions in an
 * X-macro, declares a pointer for each with DL_DECLARE and a table with
 * DL_SYMBOL, describes the library with DL_LIB, and calls dl_load() before
 * each use. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct dl_symbol {
        const char *name;
        void *where; /* the address of the sym_<name> pointer */
};

#define DL_DECLARE(f) static typeof(f) *sym_##f;
#define DL_SYMBOL(f)  {#f, &sym_##f},

struct dl_lib {
        const char *soname;
        const struct dl_symbol *syms;
        size_t n;
        int state;       /* 0 not tried yet, 1 loaded, -1 failed */
        char error[256]; /* why it failed */
};
#define DL_LIB(soname_, table)                                                                     \
        {                                                                                          \
                .soname = (soname_), .syms = (table), .n = ARRAY_SIZE(table)                       \
        }

/* dlopen()s the library and sets every pointer of its table, the first
 * time only (thread-safe); 0, or -ELIBACC with l->error saying what is
 * missing, on this and every later call. */
int dl_load(struct dl_lib *l);
