/* job_verify(): every element `firstboot agent` takes from the queue goes
 * through it before anything else. The secret is fixed, so an input that
 * carries a good signature (the corpus has some) reaches the payload
 * checks; and the input is also signed as a payload of its own, so that
 * mutations reach the payload's fields past the signature. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char secret[] = "fuzz-secret";
        check((const char *)data, size);
        if (size < 65536 && !memchr(data, '\0', size)) {
                char *payload = xstrndup((const char *)data, size), *element = NULL;
                if (job_sign(payload, secret, sizeof(secret) - 1, &element) < 0)
                        abort();
                check(element, strlen(element));
                free(element);
                free(payload);
        }
        return 0;
}

static void check(const char *data, size_t size)
{
        static const char secret[] = "fuzz-secret";
        struct job_verify_options o = {
                .agent_id = "web-1",
                .secret = secret,
                .secret_len = sizeof(secret) - 1,
                .now = 1700000000,
                .max_skew_s = 300,
                .max_bytes = 65536,
        };
        struct job_refusal_info info;
        struct job *j = NULL;
        int k = job_verify(data, size, &o, &j, &info);

        if (k < 0)
                abort();
        if (k == 0) {
                if (!j || !j->inputs || j->inputs->kind != NODE_MAP || !job_id_is_valid(j->job_id))
                        abort();
        } else {
                if (j || (int)info.reason != k || !info.message ||
                    streq(job_refusal_to_string(info.reason), "unknown"))
                        abort();
                if (info.job_id && !job_id_is_valid(info.job_id))
                        abort();
        }
        job_free(j);
        job_refusal_info_done(&info);
}
