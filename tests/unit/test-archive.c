/* tar.gz round trips and determinism; every refusal of tar_read() on a
 * tar built by hand here (a small ustar writer, and a gzip of stored
 * deflate blocks), so the bad archives do not depend on the code under
 * test; ISO9660 images written, read back by us and by xorriso. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#include "bundle.h"
#include "crypto.h"
#include "iso.h"
#include "tar.h"
#include "../../imagegen/tarball.h"
#include "fs.h"
#include "util.h"
#include "tap.h"

/* --- a tiny ustar writer --- */

static void octal(char *field, size_t width, unsigned long long v)
{
        /* width - 1 digits and a NUL, as ustar wants. */
        char tmp[32];
        int n = snprintf(tmp, sizeof(tmp), "%0*llo", (int)(width - 1), v);
        if (n < 0 || (size_t)n >= width)
                abort();
        memcpy(field, tmp, (size_t)n + 1);
}

/* Appends a header (and the data, padded to 512 bytes) to b. size is what
 * the header announces; data_len bytes of data follow. */
static void tar_entry_raw(struct buf *b, const char *name, char type, const char *link,
                          unsigned mode, unsigned long long size, const void *data, size_t data_len)
{
        unsigned char h[512] = {0};
        unsigned sum = 0;

        if (strlen(name) > 100 || (link && strlen(link) > 100))
                abort();
        memcpy(h, name, strlen(name));
        octal((char *)h + 100, 8, mode);
        octal((char *)h + 108, 8, 0);
        octal((char *)h + 116, 8, 0);
        octal((char *)h + 124, 12, size);
        octal((char *)h + 136, 12, 0);
        h[156] = (unsigned char)type;
        if (link)
                memcpy(h + 157, link, strlen(link));
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memcpy(h + 265, "root", 4);
        memcpy(h + 297, "root", 4);
        memset(h + 148, ' ', 8);
        for (size_t i = 0; i < sizeof(h); i++)
                sum += h[i];
        octal((char *)h + 148, 7, sum);
        h[155] = ' ';
        if (buf_append(b, h, sizeof(h)) < 0 || (data_len && buf_append(b, data, data_len) < 0))
                abort();
        if (data_len % 512) {
                static const char zeros[512];
                if (buf_append(b, zeros, 512 - data_len % 512) < 0)
                        abort();
        }
}

static void tar_file(struct buf *b, const char *name, const char *text)
{
        tar_entry_raw(b, name, '0', NULL, 0644, strlen(text), text, strlen(text));
}

static void tar_special(struct buf *b, const char *name, char type, const char *link)
{
        tar_entry_raw(b, name, type, link, type == '5' ? 0755 : 0644, 0, NULL, 0);
}

static void tar_end(struct buf *b)
{
        static const char zeros[1024];
        if (buf_append(b, zeros, sizeof(zeros)) < 0)
                abort();
}

/* --- gzip with stored (uncompressed) deflate blocks --- */

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
        uint32_t c = 0xffffffffu;

        for (size_t i = 0; i < n; i++) {
                c ^= p[i];
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
        }
        return ~c;
}

static void put_le32(struct buf *b, uint32_t v)
{
        unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                              (unsigned char)(v >> 24)};
        if (buf_append(b, x, 4) < 0)
                abort();
}

static void gzip_stored(const struct buf *in, struct buf *out)
{
        static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        size_t off = 0;

        *out = (struct buf){0};
        if (buf_append(out, header, sizeof(header)) < 0)
                abort();
        do {
                size_t n = in->len - off > 65535 ? 65535 : in->len - off;
                unsigned char bh[5] = {off + n == in->len ? 1 : 0, (unsigned char)n,
                                       (unsigned char)(n >> 8), (unsigned char)~n,
                                       (unsigned char)(~n >> 8)};
                if (buf_append(out, bh, sizeof(bh)) < 0 ||
                    (n && buf_append(out, in->data + off, n) < 0))
                        abort();
                off += n;
        } while (off < in->len);
        put_le32(out, crc32_of((const unsigned char *)in->data, in->len));
        put_le32(out, (uint32_t)in->len);
}

/* gzip with zlib's deflate, for inputs that must shrink. */
static void gzip_deflate(const struct buf *in, struct buf *out)
{
        z_stream z = {0};
        unsigned char chunk[4096];
        int r;

        *out = (struct buf){0};
        if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                abort();
        z.next_in = (unsigned char *)in->data;
        z.avail_in = (uInt)in->len;
        do {
                z.next_out = chunk;
                z.avail_out = sizeof(chunk);
                r = deflate(&z, Z_FINISH);
                if (r == Z_STREAM_ERROR || buf_append(out, chunk, sizeof(chunk) - z.avail_out) < 0)
                        abort();
        } while (r != Z_STREAM_END);
        deflateEnd(&z);
}

/* --- helpers --- */

static char *make_tmpdir(void)
{
        const char *base = getenv("TESTTMP");
        char *t = strprintf("%s/test-archive.XXXXXX", base && *base ? base : "/tmp");
        if (!t || !mkdtemp(t))
                abort();
        return t;
}

static void drop_tmpdir(char *dir)
{
        if (dir && !getenv("KEEP"))
                rm_rf(dir);
        free(dir);
}

/* Runs argv (stdin /dev/null, stderr discarded) and returns its stdout, or
 * NULL when it could not run or exited non-zero. */
static char *run_capture(char *const argv[])
{
        int pipefd[2], status;
        struct buf out = {0};
        char chunk[4096];
        pid_t pid;
        ssize_t n;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return NULL;
        pid = fork();
        if (pid < 0)
                return NULL;
        if (pid == 0) {
                int in = open("/dev/null", O_RDWR);
                if (in < 0 || dup2(in, 0) < 0 || dup2(pipefd[1], 1) < 0 || dup2(in, 2) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(pipefd[1]);
        while ((n = read(pipefd[0], chunk, sizeof(chunk))) > 0)
                if (buf_append(&out, chunk, (size_t)n) < 0)
                        break;
        close(pipefd[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                buf_free(&out);
                return NULL;
        }
        if (buf_append(&out, "", 0) < 0)
                return NULL;
        return buf_steal(&out);
}

static bool have_program(const char *name)
{
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"command -v \"$0\"", (char *)name,
                        NULL};
        _cleanup_free_ char *out = run_capture(argv);
        return out && *out;
}

static void put_file(const char *path, const void *data, size_t n)
{
        CHECK(write_file_atomic(path, data, n, 0644, (uid_t)-1, (gid_t)-1) >= 0);
}

/* A member list of typical and awkward members. */
static void sample_members(struct member_list *l)
{
        static unsigned char binary[100000];
        char longname[200];

        for (size_t i = 0; i < sizeof(binary); i++)
                binary[i] = (unsigned char)(i * 7 + i / 251);
        memset(longname, 'x', sizeof(longname));
        memcpy(longname, "deep/", 5);
        longname[150] = '\0';

        CHECK(member_list_add(l, "bundle.yaml", "version: 1\nname: t\n", 19, 0644) == 0);
        CHECK(member_list_add(l, "modules/hello/install.sh", "#!/bin/sh\necho hi\n", 18, 0755) ==
              0);
        CHECK(member_list_add(l, "files/empty", NULL, 0, 0600) == 0);
        CHECK(member_list_add(l, "files/binary", binary, sizeof(binary), 0640) == 0);
        CHECK(member_list_add(l, longname, "long\n", 5, 0644) == 0);
        CHECK(member_list_add(l, "files/caf\xc3\xa9.txt", "utf-8\n", 6, 0644) == 0);
        CHECK(member_list_add(l, "a", "setuid bits too\n", 16, 04755) == 0);
}

static void check_same_members(const struct member_list *a, const struct member_list *b)
{
        CHECK_INTEQ(b->n, a->n);
        for (size_t i = 0; i < a->n && i < b->n; i++) {
                CHECK_STREQ(b->v[i].path, a->v[i].path);
                CHECK_INTEQ(b->v[i].size, a->v[i].size);
                CHECK_INTEQ(b->v[i].mode, a->v[i].mode);
                CHECK(b->v[i].size == a->v[i].size &&
                      memcmp(b->v[i].data, a->v[i].data, a->v[i].size) == 0);
                CHECK(b->v[i].data[b->v[i].size] == '\0');
        }
}

/* --- member lists --- */

TEST(member_list_basics)
{
        struct member_list l = {0};
        const struct archive_member *m;

        CHECK(member_list_add(&l, "x", "abc", 3, 0100644) == 0);
        CHECK(member_list_add(&l, "y/z", NULL, 0, 0600) == 0);
        CHECK(member_list_add(&l, NULL, "", 0, 0600) == -EINVAL);
        CHECK(member_list_add(&l, "n", NULL, 1, 0600) == -EINVAL);
        CHECK_INTEQ(l.n, 2);
        m = member_list_find(&l, "x");
        CHECK(m && m->size == 3 && memcmp(m->data, "abc", 4) == 0 && m->mode == 0644);
        m = member_list_find(&l, "y/z");
        CHECK(m && m->size == 0 && m->data && m->data[0] == '\0');
        CHECK(!member_list_find(&l, "y"));
        CHECK(!member_list_find(NULL, "x"));
        member_list_free(&l);
        CHECK(l.n == 0 && l.v == NULL);
        member_list_free(&l);
        member_list_free(NULL);
}

/* --- tar.gz --- */

TEST(tar_round_trip)
{
        struct member_list in = {0}, out = {0};
        _cleanup_free_ unsigned char *gz = NULL;
        _cleanup_free_ char *error = NULL;
        size_t gz_len = 0;

        sample_members(&in);
        CHECK_INTEQ(tar_write_gz(&in, &gz, &gz_len), 0);
        CHECK(gz && gz_len > 18 && gz[0] == 0x1f && gz[1] == 0x8b);
        CHECK_INTEQ(tar_read(gz, gz_len, 1 << 20, 100, &out, &error), 0);
        CHECK(error == NULL);
        check_same_members(&in, &out);
        member_list_free(&out);

        /* An empty list is an empty archive. */
        struct member_list none = {0};
        _cleanup_free_ unsigned char *gz0 = NULL;
        size_t gz0_len = 0;
        CHECK_INTEQ(tar_write_gz(&none, &gz0, &gz0_len), 0);
        CHECK_INTEQ(tar_read(gz0, gz0_len, 1 << 20, 100, &out, &error), 0);
        CHECK_INTEQ(out.n, 0);
        member_list_free(&out);
        member_list_free(&in);
}

TEST(tar_write_deterministic)
{
        struct member_list in = {0}, bad = {0};
        _cleanup_free_ unsigned char *a = NULL, *b = NULL, *c = NULL;
        size_t a_len = 0, b_len = 0, c_len = 1234;

        sample_members(&in);
        CHECK_INTEQ(tar_write_gz(&in, &a, &a_len), 0);
        sleep_ms(1100); /* a timestamp, if one leaked in, would change */
        CHECK_INTEQ(tar_write_gz(&in, &b, &b_len), 0);
        CHECK_INTEQ(a_len, b_len);
        CHECK(a && b && a_len == b_len && memcmp(a, b, a_len) == 0);
        /* gzip: no MTIME, no FNAME. */
        CHECK(a && a[4] == 0 && a[5] == 0 && a[6] == 0 && a[7] == 0);
        CHECK(a && (a[3] & 0x08) == 0);

        /* What tar(1) sees: root/root, the epoch, the modes. */
        if (have_program("tar")) {
                _cleanup_free_ char *dir = make_tmpdir();
                _cleanup_free_ char *file = strprintf("%s/x.tar.gz", dir), *listing = NULL;
                put_file(file, a, a_len);
                char *argv[] = {(char *)"tar", (char *)"--utc", (char *)"-tvzf", file, NULL};
                listing = run_capture(argv);
                CHECK(listing != NULL);
                if (listing) {
                        CHECK(strstr(listing, "-rw-r--r-- root/root        19 1970-01-01 00:00 "
                                              "bundle.yaml\n"));
                        CHECK(strstr(listing, "-rwxr-xr-x root/root        18 1970-01-01 00:00 "
                                              "modules/hello/install.sh\n"));
                        CHECK(strstr(listing, "-rwsr-xr-x root/root"));
                        CHECK(!strstr(listing, "PaxHeader"));
                }
                if (!getenv("KEEP"))
                        rm_rf(dir);
        }

        /* Unsafe paths are not written. */
        CHECK(member_list_add(&bad, "../x", "x", 1, 0644) == 0);
        CHECK_INTEQ(tar_write_gz(&bad, &c, &c_len), -EINVAL);
        CHECK(c == NULL && c_len == 1234);
        member_list_free(&bad);
        CHECK(member_list_add(&bad, "./x", "x", 1, 0644) == 0);
        CHECK_INTEQ(tar_write_gz(&bad, &c, &c_len), -EINVAL);
        member_list_free(&bad);
        member_list_free(&in);
}

/* Reads a hand-made tar, plain and gzip'd; both must be refused with a
 * message that contains each of the want strings. */
static void check_refused(const struct buf *tar, size_t max_total, size_t max_members,
                          const char *want1, const char *want2)
{
        struct buf gz = {0};

        gzip_stored(tar, &gz);
        for (int pass = 0; pass < 2; pass++) {
                const struct buf *in = pass ? &gz : tar;
                struct member_list out = {(struct archive_member *)&out, 4242};
                char *error = NULL;

                CHECK_INTEQ(tar_read(in->data, in->len, max_total, max_members, &out, &error),
                            -EBADMSG);
                CHECK(out.v == (struct archive_member *)&out && out.n == 4242);
                CHECK(error != NULL);
                if (error && want1 && !strstr(error, want1)) {
                        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", error, want1);
                        CHECK(false);
                }
                if (error && want2 && !strstr(error, want2)) {
                        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", error, want2);
                        CHECK(false);
                }
                free(error);
                /* The message is optional. */
                CHECK_INTEQ(tar_read(in->data, in->len, max_total, max_members, &out, NULL),
                            -EBADMSG);
        }
        buf_free(&gz);
}

/* A valid tar with name inserted between two good members. */
#define REFUSED_WITH(setup, want1, want2)                                                          \
        do {                                                                                       \
                struct buf t = {0};                                                                \
                tar_file(&t, "bundle.yaml", "version: 1\n");                                       \
                setup;                                                                             \
                tar_file(&t, "z", "last\n");                                                       \
                tar_end(&t);                                                                       \
                check_refused(&t, 1 << 20, 100, want1, want2);                                     \
                buf_free(&t);                                                                      \
        } while (0)

TEST(tar_refuses_paths)
{
        REFUSED_WITH(tar_file(&t, "/etc/evil", "x"), "\"/etc/evil\"", "absolute path");
        REFUSED_WITH(tar_file(&t, "a/../../x", "x"), "\"a/../../x\"", "\"..\"");
        REFUSED_WITH(tar_file(&t, "..", "x"), "\"..\"", "\"..\"");
        REFUSED_WITH(tar_file(&t, "a/..", "x"), "\"a/..\"", "\"..\"");
        REFUSED_WITH(tar_file(&t, "./../x", "x"), "\"./../x\"", "\"..\"");
        REFUSED_WITH(tar_special(&t, "../d/", '5', NULL), "\"../d/\"", "\"..\"");
        REFUSED_WITH(tar_special(&t, "/d/", '5', NULL), "\"/d/\"", "absolute path");
        REFUSED_WITH(tar_file(&t, "a//b", "x"), "\"a//b\"", "empty or \".\" component");
        REFUSED_WITH(tar_file(&t, "a/./b", "x"), "\"a/./b\"", "empty or \".\" component");
        /* Control characters in a name are escaped in the message. */
        REFUSED_WITH(tar_file(&t, "/x\n\033[1m", "x"), "\"/x\\x0a\\x1b[1m\"", "absolute");
}

TEST(tar_refuses_types)
{
        REFUSED_WITH(tar_special(&t, "modules/m/link", '2', "/etc/shadow"), "\"modules/m/link\"",
                     "symbolic link (to /etc/shadow)");
        REFUSED_WITH(tar_special(&t, "modules/m/hard", '1', "bundle.yaml"), "\"modules/m/hard\"",
                     "hard link (to bundle.yaml)");
        REFUSED_WITH(tar_special(&t, "modules/m/dev", '3', NULL), "\"modules/m/dev\"",
                     "character device");
        REFUSED_WITH(tar_special(&t, "blk", '4', NULL), "\"blk\"", "block device");
        REFUSED_WITH(tar_special(&t, "fifo", '6', NULL), "\"fifo\"", "FIFO");
        /* A directory announcing data, or a GNU dumpdir ('D') with its
         * list of names. */
        REFUSED_WITH(tar_entry_raw(&t, "d/", '5', NULL, 0755, 512, "0123456789", 10), "\"d/\"",
                     "directory with data");
        REFUSED_WITH(tar_entry_raw(&t, "d/", 'D', NULL, 0755, 10, "0123456789", 10), "\"d/\"",
                     "directory with data");
}

TEST(tar_refuses_duplicates)
{
        REFUSED_WITH(tar_file(&t, "a", "1"); tar_file(&t, "a", "2"), "\"a\"", "duplicate path");
        REFUSED_WITH(tar_file(&t, "a", "1"); tar_file(&t, "./a", "2"), "\"a\"", "duplicate path");
        REFUSED_WITH(tar_file(&t, "bundle.yaml", "again"), "\"bundle.yaml\"", "duplicate path");
        REFUSED_WITH(tar_special(&t, "a/", '5', NULL);
                     tar_file(&t, "a", "2"), "\"a\"", "both a file and a directory");
        REFUSED_WITH(tar_file(&t, "a", "1");
                     tar_file(&t, "a/b/c", "2"), "\"a/b/c\"", "its parent a is a file");
        REFUSED_WITH(tar_file(&t, "a", "1"); tar_file(&t, "a-x", "2");
                     tar_file(&t, "a/b", "3"), "\"a/b\"", "its parent a is a file");
}

TEST(tar_refuses_limits)
{
        struct buf t = {0};
        char big[60];

        /* Five members (one a directory) with room for four. */
        tar_file(&t, "m1", "1");
        tar_special(&t, "d/", '5', NULL);
        tar_file(&t, "d/m3", "3");
        tar_file(&t, "m4", "4");
        tar_file(&t, "m5", "5");
        tar_end(&t);
        check_refused(&t, 1 << 20, 4, "\"m5\"", "more than 4 members");
        {
                struct member_list out = {0};
                CHECK_INTEQ(tar_read(t.data, t.len, 1 << 20, 5, &out, NULL), 0);
                CHECK_INTEQ(out.n, 4);
                member_list_free(&out);
        }
        buf_free(&t);

        /* Two members of 60 bytes: 512 + 512 each with header and
         * padding, then the end block: 2560 bytes read, all of them
         * counted (gzip'd, the rest of the stream too: see
         * tar_budget_counts_inflated_bytes). */
        memset(big, 'b', sizeof(big));
        tar_entry_raw(&t, "one", '0', NULL, 0644, sizeof(big), big, sizeof(big));
        tar_entry_raw(&t, "two", '0', NULL, 0644, sizeof(big), big, sizeof(big));
        tar_end(&t);
        check_refused(&t, 1595, 100, "\"two\"", "over the limit of 1595 bytes uncompressed");
        check_refused(&t, 2559, 100, "over the limit of 2559 bytes uncompressed", NULL);
        {
                struct member_list out = {0};
                CHECK_INTEQ(tar_read(t.data, t.len, 2560, 100, &out, NULL), 0);
                CHECK_INTEQ(out.n, 2);
                member_list_free(&out);
        }
        buf_free(&t);

        /* A header announcing 4 GiB is refused before anything is read. */
        tar_entry_raw(&t, "huge", '0', NULL, 0644, 4ULL << 30, "x", 1);
        tar_end(&t);
        check_refused(&t, 1 << 20, 100, "\"huge\"", "over the limit");
        buf_free(&t);
}

/* A pax record "LEN key=value\n" (LEN counts itself). */
static void pax_record(struct buf *b, const char *key, const char *value)
{
        size_t n = strlen(key) + strlen(value) + 3, len = n + 1;

        while (len != n + (size_t)snprintf(NULL, 0, "%zu", len))
                len = n + (size_t)snprintf(NULL, 0, "%zu", len);
        if (buf_printf(b, "%zu %s=%s\n", len, key, value) < 0)
                abort();
}

/* The first diagnostic, formatted, or NULL. */
static char *first_diag(const struct diags *d)
{
        return d->n > 0 ? diag_format(&d->v[0]) : NULL;
}

/* Pax global headers ('g') of 60 KiB each, read and ignored, between
 * empty directories: nothing of them is member data. Every byte of them
 * counts against the budget, so the bomb is refused naming it; before,
 * 1 GiB of such headers in 2 MB of user-data took 5 s. */
TEST(tar_pax_global_header_bomb)
{
        struct buf t = {0}, rec = {0};
        _cleanup_free_ char *filler = malloc(60 << 10);

        REQUIRE(filler);
        memset(filler, 'g', (60 << 10) - 1);
        filler[(60 << 10) - 1] = '\0';
        pax_record(&rec, "comment", filler);
        for (int i = 0; i < 200; i++) {
                char name[32];
                snprintf(name, sizeof(name), "d%d/", i);
                tar_entry_raw(&t, "pax_global_header", 'g', NULL, 0644, rec.len, rec.data, rec.len);
                tar_special(&t, name, '5', NULL);
        }
        tar_file(&t, "bundle.yaml", "version: 1\n");
        tar_end(&t);
        /* 12 MB of headers, 1 MiB allowed. */
        check_refused(&t, 1 << 20, 4096, "archive over the limit of 1048576 bytes uncompressed",
                      "headers");
        {
                struct member_list out = {0};
                CHECK_INTEQ(tar_read(t.data, t.len, t.len, 4096, &out, NULL), 0);
                CHECK_INTEQ(out.n, 1);
                member_list_free(&out);
        }
        buf_free(&t);

        /* Extended headers one after another: tar(1) writes at most
         * three before an entry. */
        for (int i = 0; i < 9; i++)
                tar_entry_raw(&t, "pax_global_header", 'g', NULL, 0644, 12, "12 a=bcdefg\n", 12);
        tar_file(&t, "bundle.yaml", "version: 1\n");
        tar_end(&t);
        check_refused(&t, 1 << 20, 100, "more than 8 extended headers in a row", NULL);
        buf_free(&t);
        buf_free(&rec);
}

/* A path from a pax header or GNU long names is bounded like PATH_MAX. */
TEST(tar_refuses_long_path)
{
        struct buf t = {0}, rec = {0};
        char path[4097];

        for (size_t i = 0; i < sizeof(path) - 1; i++)
                path[i] = i % 100 == 99 ? '/' : 'p';
        path[sizeof(path) - 1] = '\0';
        pax_record(&rec, "path", path);
        tar_entry_raw(&t, "PaxHeaders/long", 'x', NULL, 0644, rec.len, rec.data, rec.len);
        tar_file(&t, "ignored", "data\n");
        tar_end(&t);
        check_refused(&t, 1 << 20, 100, "pp\"...: path longer than 4095 bytes", NULL);
        buf_free(&t);
        buf_free(&rec);

        /* 4095 bytes are fine. */
        path[4095] = '\0';
        pax_record(&rec, "path", path);
        tar_entry_raw(&t, "PaxHeaders/long", 'x', NULL, 0644, rec.len, rec.data, rec.len);
        tar_file(&t, "ignored", "data\n");
        tar_end(&t);
        {
                struct member_list out = {0};
                CHECK_INTEQ(tar_read(t.data, t.len, 1 << 20, 100, &out, NULL), 0);
                CHECK(out.n == 1 && streq(out.v[0].path, path));
                member_list_free(&out);
        }
        buf_free(&t);
        buf_free(&rec);
}

/* Sets a field of the header at offset at in b and fixes its checksum. */
static void tar_patch(struct buf *b, size_t at, size_t off, const char *field, size_t n)
{
        unsigned char *h = (unsigned char *)b->data + at;
        unsigned sum = 0;

        memcpy(h + off, field, n);
        memset(h + 148, ' ', 8);
        for (size_t i = 0; i < 512; i++)
                sum += h[i];
        octal((char *)h + 148, 7, sum);
        h[155] = ' ';
}

/* What libarchive reads otherwise than we would, found by fuzz-tar
 * (tests/fuzz/crashes/tar/): refused. */
TEST(tar_refuses_what_libarchive_reads_otherwise)
{
        struct buf rec = {0};

        /* An extended header and then the end. */
        {
                struct buf t = {0};
                tar_file(&t, "bundle.yaml", "version: 1\n");
                tar_entry_raw(&t, "PaxHeaders/x", 'x', NULL, 0644, 12, "12 a=bcdefg\n", 12);
                tar_end(&t);
                check_refused(&t, 1 << 20, 100, "extended header without an entry after it", NULL);
                buf_free(&t);
        }
        /* Garbage after the NUL of a gid, uid, mtime or device number:
         * libarchive then recognizes no tar at all. */
        {
                static const unsigned offs[] = {108, 116, 136, 329, 337};
                for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
                        struct buf t = {0};
                        tar_file(&t, "bundle.yaml", "version: 1\n");
                        tar_patch(&t, 0, offs[i],
                                  "000\0"
                                  "0000",
                                  8);
                        tar_end(&t);
                        check_refused(&t, 1 << 20, 100, "bad number in a header", NULL);
                        buf_free(&t);
                }
        }
        /* Mode bits beyond the file type's. */
        REFUSED_WITH(tar_entry_raw(&t, "m", '0', NULL, 0600004, 1, "x", 1), "bad mode", NULL);
        /* A pax key with a NUL, an empty key. */
        REFUSED_WITH(tar_entry_raw(&t, "PaxHeaders/m", 'x', NULL, 0644, 11, "11 p\0th=ab\n", 11);
                     tar_file(&t, "m", "x"), "malformed pax header", NULL);
        REFUSED_WITH(tar_entry_raw(&t, "PaxHeaders/m", 'x', NULL, 0644, 7, "7 =abc\n", 7);
                     tar_file(&t, "m", "x"), "malformed pax header", NULL);
        /* Sparse files, which libarchive assembles from a map. */
        pax_record(&rec, "GNU.sparse.size", "100");
        REFUSED_WITH(tar_entry_raw(&t, "PaxHeaders/m", 'x', NULL, 0644, rec.len, rec.data, rec.len);
                     tar_file(&t, "m", "x"), "pax header for a sparse or special file", NULL);
        buf_free(&rec);
}

/* Gzip'd, the budget is on the inflated bytes, the record padding after
 * the end included: a bundle exactly at it is accepted, one byte less
 * refused, whatever the compressed size. */
TEST(tar_budget_counts_inflated_bytes)
{
        static char zeros[64 << 10];
        struct buf t = {0}, gz = {0};
        struct member_list out = {0};
        char *error = NULL;

        tar_file(&t, "bundle.yaml", "version: 1\n");
        tar_file(&t, "files/a", "some data\n");
        tar_end(&t);
        CHECK(buf_append(&t, zeros, sizeof(zeros)) >= 0);
        gzip_stored(&t, &gz);
        CHECK_INTEQ(tar_read(gz.data, gz.len, t.len, 100, &out, &error), 0);
        CHECK_INTEQ(out.n, 2);
        CHECK(error == NULL);
        member_list_free(&out);
        CHECK_INTEQ(tar_read(gz.data, gz.len, t.len - 1, 100, &out, &error), -EBADMSG);
        _cleanup_free_ char *want =
                strprintf("archive over the limit of %zu bytes uncompressed", t.len - 1);
        CHECK(error && strstr(error, want));
        CHECK(out.n == 0 && out.v == NULL);
        free(error);
        buf_free(&gz);
        buf_free(&t);
}

/* userdata_decode() holds every form to max_size: a gzip'd tar and the
 * base64 text's gzip'd tar once inflated, and a script. */
TEST(userdata_decode_budget)
{
        struct buf t = {0}, gz = {0};
        _cleanup_free_ char *b64 = NULL;
        enum userdata_kind kind;

        tar_file(&t, "bundle.yaml", "version: 1\n");
        for (int i = 0; i < 40; i++)
                tar_special(&t, "d/", '5', NULL);
        tar_end(&t);
        gzip_deflate(&t, &gz);
        REQUIRE(gz.len < t.len / 4);
        REQUIRE(base64_encode(gz.data, gz.len, 76, &b64) >= 0);
        _cleanup_free_ char *text = strprintf("%s\n%s\n", BUNDLE_TEXT_MAGIC, b64);
        REQUIRE(text);
        const struct {
                const void *data;
                size_t len;
                enum userdata_kind kind;
        } forms[] = {
                {gz.data, gz.len, USERDATA_TAR},
                {text, strlen(text), USERDATA_TEXT},
        };
        for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
                struct member_list m = {0};
                struct diags d = {0};
                _cleanup_free_ char *want = strprintf("over the limit of %zu bytes", t.len - 1);

                CHECK_INTEQ(
                        userdata_decode("ud", forms[i].data, forms[i].len, t.len, &kind, &m, &d),
                        0);
                CHECK(kind == forms[i].kind && m.n == 1);
                member_list_free(&m);
                CHECK(userdata_decode("ud", forms[i].data, forms[i].len, t.len - 1, &kind, &m, &d) <
                      0);
                _cleanup_free_ char *msg = first_diag(&d);
                if (!msg || !strstr(msg, want) || !startswith(msg, "ud")) {
                        fprintf(stderr, "  form %zu: %s\n", i, msg ? msg : "(none)");
                        CHECK(false);
                }
                CHECK(m.n == 0);
                diags_free(&d);
        }
        {
                static const char script[] = "#!/bin/sh\necho hi\n";
                struct member_list m = {0};
                struct diags d = {0};
                CHECK_INTEQ(userdata_decode("ud", script, strlen(script), strlen(script), &kind, &m,
                                            &d),
                            0);
                CHECK(kind == USERDATA_SCRIPT);
                member_list_free(&m);
                CHECK(userdata_decode("ud", script, strlen(script), strlen(script) - 1, &kind, &m,
                                      &d) < 0);
                _cleanup_free_ char *msg = first_diag(&d);
                CHECK(msg && strstr(msg, "over the limit of 17 bytes"));
                diags_free(&d);
        }
        buf_free(&gz);
        buf_free(&t);
}

/* A "#!" script gzip'd (as users shrink user-data to fit EC2's 16 KB)
 * runs as a script, inflated within max_size; corrupt or truncated gzip
 * is refused with the reason. */
TEST(userdata_decode_gzipped_script)
{
        struct buf t = {0}, gz = {0};
        enum userdata_kind kind;
        struct member_list m = {0};
        struct diags d = {0};

        REQUIRE(buf_puts(&t, "#!/bin/sh\n") >= 0);
        for (int i = 0; i < 50; i++)
                REQUIRE(buf_puts(&t, "echo hi from gzip\n") >= 0);
        const char *script = t.data;
        gzip_deflate(&t, &gz);
        REQUIRE(gz.len < t.len);
        CHECK_INTEQ(userdata_decode("ud", gz.data, gz.len, t.len, &kind, &m, &d), 0);
        CHECK(kind == USERDATA_SCRIPT);
        bool found = false;
        for (size_t i = 0; i < m.n; i++)
                if (strcmp(m.v[i].path, "modules/" USER_SCRIPT_MODULE "/install.sh") == 0)
                        found = m.v[i].size == t.len && memcmp(m.v[i].data, script, t.len) == 0;
        CHECK(found);
        member_list_free(&m);

        CHECK(userdata_decode("ud", gz.data, gz.len, t.len - 1, &kind, &m, &d) < 0);
        _cleanup_free_ char *msg = first_diag(&d);
        CHECK(msg && strstr(msg, "over the limit of"));
        CHECK(m.n == 0);
        diags_free(&d);

        /* The trailer's CRC-32 flipped, then the stream cut short. */
        gz.data[gz.len - 5] ^= 0xff;
        CHECK(userdata_decode("ud", gz.data, gz.len, 1 << 20, &kind, &m, &d) == -EBADMSG);
        _cleanup_free_ char *msg2 = first_diag(&d);
        CHECK(msg2 && strstr(msg2, "corrupt gzip data"));
        diags_free(&d);
        gz.data[gz.len - 5] ^= 0xff;
        CHECK(userdata_decode("ud", gz.data, gz.len - 3, 1 << 20, &kind, &m, &d) == -EBADMSG);
        CHECK(m.n == 0);
        diags_free(&d);
        buf_free(&gz);
        buf_free(&t);
}

TEST(tar_refuses_corrupt)
{
        struct member_list in = {0};
        _cleanup_free_ unsigned char *gz = NULL;
        size_t gz_len = 0;
        struct buf t = {0};

        /* A valid .tar.gz cut in half. */
        sample_members(&in);
        CHECK_INTEQ(tar_write_gz(&in, &gz, &gz_len), 0);
        {
                struct member_list out = {0};
                char *error = NULL;
                CHECK_INTEQ(tar_read(gz, gz_len / 2, 1 << 20, 100, &out, &error), -EBADMSG);
                CHECK(error && startswith(error, "truncated or corrupt archive: "));
                CHECK(out.n == 0 && out.v == NULL);
                free(error);
                error = NULL;
                /* Only the gzip trailer missing. */
                CHECK_INTEQ(tar_read(gz, gz_len - 8, 1 << 20, 100, &out, &error), -EBADMSG);
                CHECK(error && startswith(error, "truncated or corrupt archive: "));
                free(error);
                error = NULL;
                /* A flipped byte in the compressed data. */
                gz[gz_len / 2] ^= 0x55;
                CHECK_INTEQ(tar_read(gz, gz_len, 1 << 20, 100, &out, &error), -EBADMSG);
                CHECK(error && startswith(error, "truncated or corrupt archive: "));
                free(error);
        }
        member_list_free(&in);

        /* Garbage. */
        {
                char error_msg[] = "this is not an archive at all, just some text\n";
                char *error = NULL;
                struct member_list out = {0};
                CHECK_INTEQ(tar_read(error_msg, strlen(error_msg), 1 << 20, 100, &out, &error),
                            -EBADMSG);
                CHECK(error && startswith(error, "truncated or corrupt archive: "));
                free(error);
        }

        /* A plain tar whose last member's data is cut short. */
        tar_file(&t, "a", "fine\n");
        tar_entry_raw(&t, "b", '0', NULL, 0644, 4000, "only this much", 14);
        check_refused(&t, 1 << 20, 100, "truncated or corrupt archive: ", NULL);
        buf_free(&t);

        /* No end-of-archive block. */
        tar_file(&t, "a", "fine\n");
        check_refused(&t, 1 << 20, 100, "truncated or corrupt archive: unexpected end of data",
                      NULL);
        buf_free(&t);

        /* A pax header that is not "LEN key=value\n" records. */
        tar_entry_raw(&t, "pax", 'x', NULL, 0644, 7, "garbage", 7);
        tar_file(&t, "a", "fine\n");
        tar_end(&t);
        check_refused(&t, 1 << 20, 100, "truncated or corrupt archive: malformed pax header", NULL);
        buf_free(&t);

        /* A header whose checksum is wrong. */
        tar_file(&t, "a", "fine\n");
        tar_file(&t, "b", "damaged\n");
        t.data[512 + 512 + 10] ^= 1; /* inside the name of "b" */
        tar_end(&t);
        check_refused(&t, 1 << 20, 100, "truncated or corrupt archive: ", NULL);
        buf_free(&t);
}

/* libarchive does not check the gzip trailer: a stored-block gzip with a
 * changed byte of data, or a wrong CRC, decodes without complaint unless
 * we check. */
TEST(tar_gzip_trailer_checked)
{
        struct buf t = {0}, gz = {0};
        struct member_list out = {0};
        char *error = NULL;

        tar_file(&t, "a", "the data\n");
        tar_end(&t);
        gzip_stored(&t, &gz);
        CHECK_INTEQ(tar_read(gz.data, gz.len, 1 << 20, 100, &out, NULL), 0);
        member_list_free(&out);

        gz.data[10 + 5 + 512 + 4] ^= 0x20; /* "the data" -> "the Data" */
        CHECK_INTEQ(tar_read(gz.data, gz.len, 1 << 20, 100, &out, &error), -EBADMSG);
        CHECK_STREQ(error, "truncated or corrupt archive: gzip CRC-32 or length mismatch");
        free(error);
        error = NULL;
        gz.data[10 + 5 + 512 + 4] ^= 0x20;
        gz.data[gz.len - 8] ^= 1; /* the CRC */
        CHECK_INTEQ(tar_read(gz.data, gz.len, 1 << 20, 100, &out, &error), -EBADMSG);
        CHECK_STREQ(error, "truncated or corrupt archive: gzip CRC-32 or length mismatch");
        free(error);
        error = NULL;
        gz.data[gz.len - 8] ^= 1;
        gz.data[gz.len - 1] ^= 1; /* the length */
        CHECK_INTEQ(tar_read(gz.data, gz.len, 1 << 20, 100, &out, &error), -EBADMSG);
        free(error);
        error = NULL;
        gz.data[gz.len - 1] ^= 1;
        /* A second gzip member (gzip a; gzip b; cat). */
        {
                struct buf two = {0};
                CHECK(buf_append(&two, gz.data, gz.len) >= 0 &&
                      buf_append(&two, gz.data, gz.len) >= 0);
                CHECK_INTEQ(tar_read(two.data, two.len, 1 << 20, 100, &out, &error), -EBADMSG);
                CHECK_STREQ(error,
                            "truncated or corrupt archive: data after the end of the gzip stream");
                free(error);
                error = NULL;
                buf_free(&two);
        }
        /* Something after the trailer. */
        CHECK(buf_append(&gz, "x", 1) >= 0);
        CHECK_INTEQ(tar_read(gz.data, gz.len, 1 << 20, 100, &out, &error), -EBADMSG);
        CHECK(error && startswith(error, "truncated or corrupt archive: "));
        free(error);
        error = NULL;
        buf_free(&gz);

        /* Record padding after the end is fine; megabytes of it (a bomb
         * that tar would never read) are not. */
        {
                static char zeros[3 << 20];
                CHECK(buf_append(&t, zeros, 64 << 10) >= 0);
                gzip_stored(&t, &gz);
                CHECK_INTEQ(tar_read(gz.data, gz.len, 1 << 20, 100, &out, NULL), 0);
                member_list_free(&out);
                buf_free(&gz);
                CHECK(buf_append(&t, zeros, sizeof(zeros)) >= 0);
                gzip_stored(&t, &gz);
                CHECK_INTEQ(tar_read(gz.data, gz.len, 16 << 20, 100, &out, &error), -EBADMSG);
                CHECK_STREQ(error, "truncated or corrupt archive: too much data after the end "
                                   "of the archive");
                free(error);
                buf_free(&gz);
                /* Not compressed, there is nothing to decompress. */
                CHECK_INTEQ(tar_read(t.data, t.len, 16 << 20, 100, &out, NULL), 0);
                member_list_free(&out);
        }
        buf_free(&t);
}

TEST(tar_accepts_gnu_tar_layout)
{
        struct buf t = {0}, gz = {0};

        /* What `tar -C dir -czf x .` makes: "./", directories, "./"
         * prefixes. */
        tar_special(&t, "./", '5', NULL);
        tar_file(&t, "./bundle.yaml", "version: 1\n");
        tar_special(&t, "./modules/", '5', NULL);
        tar_special(&t, "./modules/m/", '5', NULL);
        tar_entry_raw(&t, "./modules/m/install.sh", '0', NULL, 0755, 3, "#!\n", 3);
        tar_special(&t, "./empty-dir/", '5', NULL);
        tar_end(&t);
        gzip_stored(&t, &gz);
        for (int pass = 0; pass < 2; pass++) {
                struct member_list out = {0};
                char *error = NULL;
                const struct buf *in = pass ? &gz : &t;

                CHECK_INTEQ(tar_read(in->data, in->len, 1 << 20, 100, &out, &error), 0);
                CHECK(error == NULL);
                CHECK_INTEQ(out.n, 2);
                if (out.n == 2) {
                        CHECK_STREQ(out.v[0].path, "bundle.yaml");
                        CHECK_STREQ(out.v[1].path, "modules/m/install.sh");
                        CHECK_INTEQ(out.v[1].mode, 0755);
                        CHECK_STREQ((char *)out.v[1].data, "#!\n");
                }
                member_list_free(&out);
        }
        buf_free(&t);
        buf_free(&gz);

        /* A pax header's path wins over the name in the ustar header. */
        tar_entry_raw(&t, "PaxHeaders/x", 'x', NULL, 0644, 18, "18 path=real/name\n", 18);
        tar_file(&t, "ignored", "data\n");
        tar_end(&t);
        {
                struct member_list out = {0};
                CHECK_INTEQ(tar_read(t.data, t.len, 1 << 20, 100, &out, NULL), 0);
                CHECK(out.n == 1 && streq(out.v[0].path, "real/name"));
                member_list_free(&out);
        }
        buf_free(&t);

        /* The real tar(1), when present, in each of its formats; the long
         * path takes GNU's 'L' entries, ustar's prefix field or pax. */
        if (have_program("tar")) {
                static const char *const formats[] = {"gnu", "oldgnu", "ustar", "pax"};
                /* 121 bytes: over the 100 of a name field; each directory
                 * fits one, so ustar can split the path into its prefix. */
                char longdir[122];
                _cleanup_free_ char *dir = make_tmpdir();

                memset(longdir, 'd', sizeof(longdir) - 1);
                longdir[60] = '/';
                longdir[sizeof(longdir) - 1] = '\0';
                _cleanup_free_ char *lf = strprintf("%s/src/%s/long-name.txt", dir, longdir);
                _cleanup_free_ char *want = strprintf("%s/long-name.txt", longdir);
                CHECK(mkdir_parents(lf, 0755) >= 0);
                put_file(lf, "long\n", 5);
                chmod(lf, 0640);
                for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
                        _cleanup_free_ char *src = strprintf("%s/src", dir),
                                            *tgz = strprintf("%s/%s.tgz", dir, formats[i]),
                                            *fmt = strprintf("--format=%s", formats[i]),
                                            *data = NULL, *error = NULL;
                        char *argv[] = {(char *)"tar",  fmt, (char *)"-C", src,
                                        (char *)"-czf", tgz, (char *)".",  NULL};
                        _cleanup_free_ char *ignored = run_capture(argv);
                        struct member_list out = {0};
                        size_t len = 0;

                        CHECK(ignored != NULL);
                        CHECK(read_file(tgz, 1 << 20, &data, &len) >= 0);
                        CHECK_INTEQ(tar_read(data, len, 1 << 20, 100, &out, &error), 0);
                        if (out.n != 1 || !streq(out.v[0].path, want) || out.v[0].mode != 0640 ||
                            !streq((char *)out.v[0].data, "long\n")) {
                                fprintf(stderr, "  tar --format=%s: %zu members, error %s\n",
                                        formats[i], out.n, error ? error : "none");
                                CHECK(false);
                        }
                        member_list_free(&out);
                }
                if (!getenv("KEEP"))
                        rm_rf(dir);
        }
        if (have_program("tar")) {
                _cleanup_free_ char *dir = make_tmpdir();
                _cleanup_free_ char *src = strprintf("%s/src", dir),
                                    *f = strprintf("%s/src/sub/f.txt", dir),
                                    *out_tgz = strprintf("%s/x.tgz", dir), *data = NULL;
                size_t len = 0;
                struct member_list out = {0};

                CHECK(mkdir_parents(f, 0755) >= 0);
                put_file(f, "hello\n", 6);
                char *argv[] = {(char *)"tar", (char *)"-C", src, (char *)"-czf",
                                out_tgz,       (char *)".",  NULL};
                _cleanup_free_ char *ignored = run_capture(argv);
                CHECK(ignored != NULL);
                CHECK(read_file(out_tgz, 1 << 20, &data, &len) >= 0);
                CHECK_INTEQ(tar_read(data, len, 1 << 20, 100, &out, NULL), 0);
                CHECK_INTEQ(out.n, 1);
                if (out.n == 1)
                        CHECK_STREQ(out.v[0].path, "sub/f.txt");
                member_list_free(&out);
                if (!getenv("KEEP"))
                        rm_rf(dir);
        }
}

/* --- ISO9660 --- */

TEST(iso_write_read)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *img = strprintf("%s/seed.iso", dir);
        struct member_list in = {0};
        static unsigned char big[300000];
        char vid[33];

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (unsigned char)(i % 253);
        CHECK(member_list_add(&in, "meta-data", "instance-id: i-1\nlocal-hostname: h\n", 35,
                              0644) == 0);
        CHECK(member_list_add(&in, "user-data", "#firstboot-bundle v1\nH4sI\n", 26, 0600) == 0);
        CHECK(member_list_add(&in, "openstack/latest/user_data", "#!/bin/sh\n", 10, 0644) == 0);
        CHECK(member_list_add(&in, "openstack/latest/meta_data.json", "{\"uuid\": \"u\"}", 13,
                              0644) == 0);
        CHECK(member_list_add(&in, "empty", NULL, 0, 0644) == 0);
        CHECK(member_list_add(&in, "also-empty", NULL, 0, 0644) == 0);
        CHECK(member_list_add(&in, "big.bin", big, sizeof(big), 0644) == 0);
        CHECK(member_list_add(&in, "same-as-meta", "instance-id: i-1\nlocal-hostname: h\n", 35,
                              0644) == 0);
        CHECK(member_list_add(&in, "a-rather-long-file-name-for-iso9660.yaml", "long\n", 5, 0644) ==
              0);

        CHECK_INTEQ(iso_write(img, "cidata", &in), 0);
        CHECK_INTEQ(iso_volume_id(img, vid), 0);
        CHECK_STREQ(vid, "cidata");

        for (size_t i = 0; i < in.n; i++) {
                _cleanup_free_ char *data = NULL;
                size_t len = 7;

                CHECK_INTEQ(iso_read_member(img, in.v[i].path, 1 << 20, &data, &len), 0);
                CHECK_INTEQ(len, in.v[i].size);
                CHECK(data && len == in.v[i].size && memcmp(data, in.v[i].data, len) == 0);
                CHECK(data && data[len] == '\0');
        }
        {
                _cleanup_free_ char *data = NULL;
                /* ret_size is optional; leading "/" or "./" is fine. */
                CHECK_INTEQ(iso_read_member(img, "/user-data", 100, &data, NULL), 0);
                CHECK_STREQ(data, "#firstboot-bundle v1\nH4sI\n");
                free(data);
                data = NULL;
                CHECK_INTEQ(iso_read_member(img, "./openstack/latest/user_data", 100, &data, NULL),
                            0);
                CHECK_STREQ(data, "#!/bin/sh\n");
        }
        {
                char *data = NULL;
                size_t len = 7;
                CHECK_INTEQ(iso_read_member(img, "vendor-data", 100, &data, &len), -ENOENT);
                CHECK_INTEQ(iso_read_member(img, "openstack/latest/nope", 100, &data, &len),
                            -ENOENT);
                CHECK_INTEQ(iso_read_member(img, "USER-DATA", 100, &data, &len), -ENOENT);
                CHECK_INTEQ(iso_read_member(img, "openstack", 100, &data, &len), -EISDIR);
                CHECK_INTEQ(iso_read_member(img, "big.bin", sizeof(big) - 1, &data, &len), -EFBIG);
                CHECK_INTEQ(iso_read_member(img, "big.bin", 0, &data, &len), -EFBIG);
                CHECK(data == NULL && len == 7);
                CHECK_INTEQ(iso_read_member(img, "empty", 0, &data, &len), 0);
                CHECK(data && data[0] == '\0' && len == 0);
                free(data);
        }

        /* Replaced atomically; the file is 0600 and no temp file is left. */
        {
                struct member_list two = {0};
                struct stat st;
                _cleanup_free_ char *data = NULL, *listing = NULL;
                char *ls[] = {(char *)"ls", (char *)"-A", dir, NULL};

                CHECK(member_list_add(&two, "user-data", "v2\n", 3, 0644) == 0);
                CHECK_INTEQ(iso_write(img, "config-2", &two), 0);
                CHECK_INTEQ(iso_volume_id(img, vid), 0);
                CHECK_STREQ(vid, "config-2");
                CHECK_INTEQ(iso_read_member(img, "user-data", 100, &data, NULL), 0);
                CHECK_STREQ(data, "v2\n");
                CHECK(stat(img, &st) == 0 && (st.st_mode & 07777) == 0600);
                listing = run_capture(ls);
                CHECK_STREQ(listing, "seed.iso\n");
                member_list_free(&two);
        }
        member_list_free(&in);
        drop_tmpdir(dir);
}

TEST(iso_write_refuses)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *img = strprintf("%s/x.iso", dir),
                            *missing = strprintf("%s/no/such/dir/x.iso", dir);
        struct member_list l = {0}, bad = {0}, dup = {0};

        CHECK(member_list_add(&l, "user-data", "x", 1, 0644) == 0);
        CHECK_INTEQ(iso_write(img, "", &l), -EINVAL);
        CHECK_INTEQ(iso_write(img, "has space", &l), -EINVAL);
        CHECK_INTEQ(iso_write(img, "123456789012345678901234567890123", &l), -EINVAL);
        CHECK(!path_exists(img));
        CHECK_INTEQ(iso_write(img, "12345678901234567890123456789012", &l), 0);
        {
                char vid[33];
                CHECK_INTEQ(iso_volume_id(img, vid), 0);
                CHECK_STREQ(vid, "12345678901234567890123456789012");
        }
        CHECK(member_list_add(&bad, "../user-data", "x", 1, 0644) == 0);
        CHECK_INTEQ(iso_write(img, "cidata", &bad), -EINVAL);
        CHECK(member_list_add(&dup, "a", "x", 1, 0644) == 0);
        CHECK(member_list_add(&dup, "a", "y", 1, 0644) == 0);
        CHECK_INTEQ(iso_write(img, "cidata", &dup), -EINVAL);
        CHECK_INTEQ(iso_write(missing, "cidata", &l), -ENOENT);
        member_list_free(&l);
        member_list_free(&bad);
        member_list_free(&dup);
        drop_tmpdir(dir);
}

/* An image with thousands of entries before user-data is not walked
 * through without end: refused after 4096 (a seed holds a handful). */
TEST(iso_entries_bounded)
{
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *img = strprintf("%s/many.iso", dir);
        struct member_list l = {0};

        for (unsigned n = 0; n < 2; n++) {
                _cleanup_free_ char *data = NULL;
                unsigned files = n ? 4100 : 4000;

                for (unsigned i = l.n; i < files; i++) {
                        char name[16];
                        snprintf(name, sizeof(name), "a%04u", i);
                        CHECK(member_list_add(&l, name, "x", 1, 0644) == 0);
                }
                CHECK_INTEQ(iso_write(img, "cidata", &l), 0);
                /* user-data sorts after every aNNNN. */
                CHECK_INTEQ(iso_read_member(img, "user-data", 100, &data, NULL),
                            n ? -EIO : -ENOENT);
        }
        member_list_free(&l);
        drop_tmpdir(TAKE_PTR(dir));
}

TEST(iso_not_iso9660)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *small = strprintf("%s/small", dir), *big = strprintf("%s/big", dir);
        static unsigned char zeros[40000];
        char vid[33] = "untouched";
        char *data = NULL;

        put_file(small, "hello\n", 6);
        put_file(big, zeros, sizeof(zeros));
        CHECK_INTEQ(iso_volume_id(small, vid), -EMEDIUMTYPE);
        CHECK_INTEQ(iso_volume_id(big, vid), -EMEDIUMTYPE);
        CHECK_STREQ(vid, "untouched");
        CHECK_INTEQ(iso_read_member(small, "user-data", 100, &data, NULL), -EMEDIUMTYPE);
        CHECK_INTEQ(iso_read_member(big, "user-data", 100, &data, NULL), -EMEDIUMTYPE);
        CHECK(data == NULL);
        CHECK_INTEQ(iso_volume_id(dir, vid), -EISDIR);
        drop_tmpdir(dir);
}

/* xorriso, an independent reader, sees the files with their Rock Ridge
 * names and contents. */
TEST(iso_xorriso_reads)
{
        char *dir;
        struct member_list in = {0};

        if (!have_program("xorriso")) {
                fprintf(stderr, "  # xorriso not installed, skipped\n");
                return;
        }
        dir = make_tmpdir();
        _cleanup_free_ char *img = strprintf("%s/seed.iso", dir), *listing = NULL, *pvd = NULL,
                            *ext = strprintf("%s/ud", dir), *data = NULL;
        CHECK(member_list_add(&in, "meta-data", "instance-id: x\n", 15, 0644) == 0);
        CHECK(member_list_add(&in, "user-data", "#!/bin/sh\necho hi\n", 18, 0644) == 0);
        CHECK(member_list_add(&in, "openstack/latest/user_data", "nested\n", 7, 0644) == 0);
        CHECK_INTEQ(iso_write(img, "cidata", &in), 0);

        char *find[] = {(char *)"xorriso", (char *)"-indev", img,
                        (char *)"-find",   (char *)"/",      NULL};
        listing = run_capture(find);
        CHECK(listing != NULL);
        if (listing) {
                CHECK(strstr(listing, "'/meta-data'\n"));
                CHECK(strstr(listing, "'/user-data'\n"));
                CHECK(strstr(listing, "'/openstack/latest/user_data'\n"));
        }
        char *info[] = {(char *)"xorriso", (char *)"-indev", img, (char *)"-pvd_info", NULL};
        pvd = run_capture(info);
        CHECK(pvd && strstr(pvd, "Volume Id    : cidata\n"));
        char *extract[] = {(char *)"xorriso",
                           (char *)"-osirrox",
                           (char *)"on",
                           (char *)"-indev",
                           img,
                           (char *)"-extract",
                           (char *)"/user-data",
                           ext,
                           NULL};
        _cleanup_free_ char *ignored = run_capture(extract);
        CHECK(ignored != NULL);
        CHECK(read_file(ext, 100, &data, NULL) >= 0);
        CHECK_STREQ(data, "#!/bin/sh\necho hi\n");

        /* An image xorriso made, where two names share one file (libarchive
         * reports the second as a hard link to the first). */
        {
                _cleanup_free_ char *src = strprintf("%s/src", dir),
                                    *a = strprintf("%s/src/user-data", dir),
                                    *b = strprintf("%s/src/openstack/latest/user_data", dir),
                                    *img2 = strprintf("%s/theirs.iso", dir), *out = NULL,
                                    *got = NULL;
                char vid[33];
                size_t len = 0;

                CHECK(mkdir_parents(b, 0755) >= 0);
                put_file(a, "shared\n", 7);
                CHECK(link(a, b) == 0);
                char *mk[] = {(char *)"xorriso",
                              (char *)"-hardlinks",
                              (char *)"on",
                              (char *)"-outdev",
                              img2,
                              (char *)"-volid",
                              (char *)"cidata",
                              (char *)"-joliet",
                              (char *)"on",
                              (char *)"-map",
                              src,
                              (char *)"/",
                              NULL};
                out = run_capture(mk);
                CHECK(out != NULL);
                CHECK_INTEQ(iso_volume_id(img2, vid), 0);
                CHECK_STREQ(vid, "cidata");
                CHECK_INTEQ(iso_read_member(img2, "user-data", 100, &got, &len), 0);
                CHECK_STREQ(got, "shared\n");
                free(got);
                got = NULL;
                CHECK_INTEQ(iso_read_member(img2, "openstack/latest/user_data", 100, &got, &len),
                            0);
                CHECK_STREQ(got, "shared\n");
                CHECK_INTEQ(len, 7);
        }
        member_list_free(&in);
        drop_tmpdir(dir);
}

TAP_MAIN
