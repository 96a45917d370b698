/* tar_read(), our bundle reader, against libarchive (linked here, in the
 * test only): for every input either ours refuses, or both accept and
 * give the same regular files (paths, permission bits, sizes, bytes) in the same
 * order and nothing else but directories. Ours may refuse what libarchive
 * takes; it may never take what libarchive refuses or read it otherwise.
 * A divergence aborts, so the fuzzer keeps the input. */
#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tar.h"

#define MAX_TOTAL   (1u << 20)
#define MAX_MEMBERS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void diverge(const char *what, const char *detail)
{
        fprintf(stderr, "fuzz-tar: ours accepted, libarchive %s%s%s\n", what, detail ? ": " : "",
                detail ? detail : "");
        abort();
}

/* libarchive's path as ours gives it: leading "./" gone. */
static const char *strip_dot(const char *p)
{
        while (p[0] == '.' && p[1] == '/')
                p += 2;
        return p;
}

/* Reads the entry's data; whether it is exactly want (size bytes). */
static int same_data(struct archive *a, const struct archive_member *want)
{
        unsigned char buf[8192];
        size_t got = 0;

        for (;;) {
                la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
                if (n < 0)
                        diverge("failed reading data", archive_error_string(a));
                if (n == 0)
                        break;
                if (got + (size_t)n > want->size || memcmp(want->data + got, buf, (size_t)n) != 0)
                        return 0;
                got += (size_t)n;
        }
        return got == want->size;
}

static void check(const uint8_t *data, size_t size)
{
        struct member_list ours = {0};
        char *error = NULL;
        struct archive *a;
        struct archive_entry *e;
        size_t i = 0;
        char why[256];

        if (tar_read(data, size, MAX_TOTAL, MAX_MEMBERS, &ours, &error) < 0) {
                free(error);
                return;
        }

        a = archive_read_new();
        if (!a || archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_open_memory(a, data, size) != ARCHIVE_OK)
                diverge("could not open it", a ? archive_error_string(a) : NULL);
        for (;;) {
                int r = archive_read_next_header(a, &e);
                const char *path;
                const struct archive_member *m;

                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                        diverge("refused a header", archive_error_string(a));
                path = archive_entry_pathname(e);
                if (!path)
                        diverge("gave an entry without a path", NULL);
                if (archive_entry_hardlink(e))
                        diverge("read a hard link", path);
                if (archive_entry_filetype(e) == AE_IFDIR)
                        continue;
                if (archive_entry_filetype(e) != AE_IFREG)
                        diverge("read an entry that is not a file or directory", path);
                if (i >= ours.n)
                        diverge("read more files", path);
                m = &ours.v[i++];
                snprintf(why, sizeof(why), "ours \"%.100s\" %o %zu, libarchive \"%.100s\" %o %lld",
                         m->path, m->mode, m->size, path, archive_entry_perm(e),
                         (long long)archive_entry_size(e));
                if (strcmp(strip_dot(path), m->path) != 0 ||
                    (archive_entry_perm(e) & 07777) != m->mode || !archive_entry_size_is_set(e) ||
                    archive_entry_size(e) < 0 || (uint64_t)archive_entry_size(e) != m->size)
                        diverge("read another file", why);
                if (!same_data(a, m))
                        diverge("read other data", why);
        }
        if (i != ours.n)
                diverge("read fewer files", ours.v[i].path);
        archive_read_free(a);
        member_list_free(&ours);
}

/* The input gzip'd, so that what the fuzzer makes of the tar inside also
 * goes through our inflating reader (a mutated .tar.gz rarely keeps a
 * valid CRC). */
static int gzip(const uint8_t *data, size_t size, unsigned char **ret, size_t *ret_size)
{
        z_stream z = {0};
        size_t cap = deflateBound(&z, (uLong)size) + 64;
        unsigned char *out = malloc(cap);

        if (!out ||
            deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
                free(out);
                return -1;
        }
        z.next_in = (unsigned char *)data;
        z.avail_in = (uInt)size;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
                deflateEnd(&z);
                free(out);
                return -1;
        }
        *ret_size = cap - z.avail_out;
        *ret = out;
        deflateEnd(&z);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        unsigned char *gz = NULL;
        size_t gz_size = 0;

        check(data, size);
        if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b) &&
            gzip(data, size, &gz, &gz_size) == 0) {
                check(gz, gz_size);
                free(gz);
        }
        return 0;
}
