/* Libraries loaded when first needed (libcurl, libarchive, libsystemd,
 * libcrypto), so that a process that does not use one does not
 * pay for it and its dependencies at start-up. A user lists its functions
 * in an X-macro, defines the library with DL_DEFINE (a sym_<name> pointer
 * for each function, and the struct dl_lib), and calls dl_load() before
 * each use. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The sonames, also what `imagegen bake` looks for in an image. */
#define SONAME_LIBARCHIVE "libarchive.so.13"
#define SONAME_LIBCURL    "libcurl.so.4"
#define SONAME_LIBSYSTEMD "libsystemd.so.0"
#define SONAME_LIBCRYPTO  "libcrypto.so.3"
#define SONAME_LIBSODIUM  "libsodium.so.23"

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
        bool global;     /* RTLD_GLOBAL: its symbols serve libraries loaded later */
        int state;       /* 0 not tried yet, 1 loaded, -1 failed */
        char error[256]; /* why it failed */
};
/* Defines `static struct dl_lib var` for soname and the functions that
 * SYMBOLS(X) lists, with a pointer sym_<function> for each. */
#define DL_DEFINE_FULL(var, soname_, SYMBOLS, global_)                                             \
        SYMBOLS(DL_DECLARE)                                                                        \
        static const struct dl_symbol var##_symbols[] = {SYMBOLS(DL_SYMBOL)};                      \
        static struct dl_lib var = {.soname = (soname_),                                           \
                                    .syms = var##_symbols,                                         \
                                    .n = ARRAY_SIZE(var##_symbols),                                \
                                    .global = (global_)}
#define DL_DEFINE(var, soname_, SYMBOLS) DL_DEFINE_FULL(var, soname_, SYMBOLS, false)
/* The same, for a library whose symbols a library loaded after it uses
 * without naming it as needed (libhiredict_ssl and libhiredict). */
#define DL_DEFINE_GLOBAL(var, soname_, SYMBOLS) DL_DEFINE_FULL(var, soname_, SYMBOLS, true)

/* dlopen()s the library and sets every pointer of its table, the first
 * time only (thread-safe); 0, or -ELIBACC with l->error saying what is
 * missing, on this and every later call. */
int dl_load(struct dl_lib *l);
