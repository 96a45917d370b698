/* The metadata documents each datasource parses, as fetched: the first
 * byte picks the source (Hetzner's metadata YAML, DigitalOcean's v1.json,
 * NoCloud meta-data, ConfigDrive meta_data.json, EC2's public-keys/
 * listing and an openssh-key answer), the rest is the document. Whatever
 * is accepted must hold a valid instance id and SSH keys that check again
 * and carry no newline; a refusal must say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../firstboot/datasource.h"
#include "../../firstboot/sshkeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const sources[] = {"hetzner",     "digitalocean", "nocloud",
                                              "configdrive", "ec2",          "ec2-key"};
        struct ds_result res = {0};
        char *error = NULL;

        if (size < 1)
                return 0;
        const char *source = sources[data[0] % (sizeof(sources) / sizeof(sources[0]))];
        int r = ds_parse_metadata(source, (const char *)data + 1, size - 1, &res, &error);
        if (r < 0) {
                if (!error || !*error)
                        abort();
        } else {
                if (error)
                        abort();
                if (strncmp(source, "ec2", 3) != 0 && (!res.instance_id || !*res.instance_id))
                        abort();
                size_t n = 0;
                for (char **k = res.ssh_keys; k && *k; k++, n++) {
                        char *again = NULL;
                        const char *why = NULL;
                        if (strchr(*k, '\n') || strchr(*k, '\r'))
                                abort();
                        /* A checked key is a fixed point of the check. */
                        if (sshkey_parse(*k, &again, &why) < 0 || strcmp(again, *k) != 0)
                                abort();
                        free(again);
                }
                if (n > SSHKEYS_MAX)
                        abort();
        }
        free(error);
        ds_result_free(&res);
        return 0;
}
