#include "dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int open_symbols(struct dl_lib *l)
{
        void *h = dlopen(l->soname, RTLD_NOW | (l->global ? RTLD_GLOBAL : RTLD_LOCAL));

        if (!h) {
                snprintf(l->error, sizeof(l->error), "%s", dlerror());
                return -1;
        }
        for (size_t i = 0; i < l->n; i++) {
                void *p = dlsym(h, l->syms[i].name);
                if (!p) {
                        snprintf(l->error, sizeof(l->error), "%s lacks %s", l->soname,
                                 l->syms[i].name);
                        return -1;
                }
                /* Through memcpy: the pointer is a function pointer. */
                memcpy(l->syms[i].where, &p, sizeof(p));
        }
        return 1;
}

int dl_load(struct dl_lib *l)
{
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        int state;

        pthread_mutex_lock(&lock);
        if (l->state == 0)
                l->state = open_symbols(l);
        state = l->state;
        pthread_mutex_unlock(&lock);
        return state > 0 ? 0 : -ELIBACC;
}
