/* journal-send IDENT MESSAGE [KEY=VALUE...]: sends one entry with
 * common/journal.c's journal_send(), for the tests that read it back from
 * a real journald. A value "@big:N" becomes N bytes ("0123456789" over and
 * over, with a newline every 1000), too big for one datagram. Exit 0, 1 when
 * sending fails (printed), 2 on a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "journal.h"
#include "util.h"

int main(int argc, char **argv)
{
        char **fields = NULL;
        int r;

        if (argc < 3) {
                fprintf(stderr, "usage: journal-send IDENT MESSAGE [KEY=VALUE...]\n");
                return 2;
        }
        for (int i = 3; i < argc; i++) {
                char *eq = strchr(argv[i], '=');
                unsigned long n;

                if (eq && sscanf(eq + 1, "@big:%lu", &n) == 1) {
                        size_t klen = (size_t)(eq - argv[i]) + 1;
                        char *f = xmalloc(klen + n + 1);
                        memcpy(f, argv[i], klen);
                        for (size_t k = 0; k < n; k++)
                                f[klen + k] = k % 1000 == 999 ? '\n' : (char)('0' + k % 10);
                        f[klen + n] = '\0';
                        strv_push(&fields, f);
                } else
                        strv_push(&fields, xstrdup(argv[i]));
        }
        r = journal_send(6, argv[1], argv[2], fields);
        strv_free(fields);
        if (r < 0) {
                fprintf(stderr, "journal-send: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
