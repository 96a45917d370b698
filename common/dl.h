/* Libraries loaded when first needed (libcurl, libarchive), so that a
 * process that never fetches or opens an archive does not pay for them and
 * their dependencies at start-up. A user lists its functions in an
 * X-macro, declares a pointer for each with DL_DECLARE and a table with
 * DL_SYMBOL, and calls dl_open_symbols() once (pthread_once). */
#pragma once

#include <stddef.h>

struct dl_symbol {
        const char *name;
        void *where; /* the address of the sym_<name> pointer */
};

#define DL_DECLARE(f) static typeof(f) *sym_##f;
#define DL_SYMBOL(f)  {#f, &sym_##f},

/* dlopen()s lib and sets every pointer of syms; 0, or -ELIBACC with err
 * (errsz bytes) saying what is missing. */
int dl_open_symbols(const char *lib, const struct dl_symbol *syms, size_t n, char *err,
                    size_t errsz);
