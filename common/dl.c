#include "dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int dl_open_symbols(const char *lib, const struct dl_symbol *syms, size_t n, char *err,
                    size_t errsz)
{
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                snprintf(err, errsz, "%s", dlerror());
                return -ELIBACC;
        }
        for (size_t i = 0; i < n; i++) {
                void *p = dlsym(h, syms[i].name);
                if (!p) {
                        snprintf(err, errsz, "%s lacks %s", lib, syms[i].name);
                        return -ELIBACC;
                }
                /* Through memcpy: the pointer is a function pointer. */
                memcpy(syms[i].where, &p, sizeof(p));
        }
        return 0;
}
