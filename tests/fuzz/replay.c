/* Replays fuzz inputs through a target without libFuzzer, so `make check`
 * (gcc, and gcc with ASan/UBSan) runs the committed corpus and every past
 * crash on each build. Usage: fuzz-NAME FILE|DIR... Prints TAP: one line
 * per argument with the number of inputs it held. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        size_t cap = 4096, n = 0;
        uint8_t *buf = malloc(cap);
        for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
                n += k;
                if (n == cap) {
                        uint8_t *b = realloc(buf, cap *= 2);
                        if (!b)
                                free(buf);
                        buf = b;
                }
        }
        int bad = ferror(f) || !buf;
        fclose(f);
        if (bad) {
                free(buf);
                fprintf(stderr, "%s: read failed\n", path);
                return -1;
        }
        /* An exact-size copy, so ASan sees a read past the input's end. */
        uint8_t *exact = malloc(n ? n : 1);
        if (!exact) {
                free(buf);
                return -1;
        }
        memcpy(exact, buf, n);
        free(buf);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        return 0;
}

static int cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static long replay(const char *path)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return errno == ENOENT ? 0 : -1;
        if (!S_ISDIR(st.st_mode))
                return replay_file(path) < 0 ? -1 : 1;
        DIR *d = opendir(path);
        if (!d)
                return -1;
        char **names = NULL;
        size_t n = 0;
        long count = 0;
        for (struct dirent *e; (e = readdir(d));) {
                if (e->d_name[0] == '.')
                        continue;
                char **v = realloc(names, (n + 1) * sizeof(*names));
                if (!v)
                        break;
                names = v;
                size_t len = strlen(path) + strlen(e->d_name) + 2;
                if (!(names[n] = malloc(len)))
                        break;
                snprintf(names[n++], len, "%s/%s", path, e->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(*names), cmp);
        for (size_t i = 0; i < n; i++) {
                long k = replay(names[i]);
                count = count < 0 || k < 0 ? -1 : count + k;
                free(names[i]);
        }
        free(names);
        return count;
}

int main(int argc, char **argv)
{
        int failed = 0;
        for (int i = 1; i < argc; i++) {
                long k = replay(argv[i]);
                printf("%sok - %s: %ld inputs replayed\n", k < 0 ? "not " : "", argv[i],
                       k < 0 ? 0 : k);
                failed |= k < 0;
        }
        return failed;
}
