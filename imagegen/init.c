/* imagegen init DIR: a working example site for the whole stack. */
#include "agekey.h"
#include "fs.h"
#include "imagegen.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char site_yaml[] =
        "# One server, described once: the whole stack (Docker, PostgreSQL and\n"
        "# Redis, the ColonyOS server with its colony and executor, agent-manager,\n"
        "# nginx with TLS in front, backups and updates).\n"
        "#   imagegen validate site.yaml           check it (file:line:column)\n"
        "#   imagegen userdata site.yaml -o ud     what you paste as user-data\n"
        "#   imagegen seed site.yaml -o seed.iso   a NoCloud image for QEMU/libvirt\n"
        "name: colony-prod\n"
        "hostname: colony-1\n"
        "provider: hetzner            # hetzner | digitalocean | ec2 | nocloud\n"
        "\n"
        "# The controller told when the server is ready, or why not. The token\n"
        "# signs the callback: left out, imagegen generates one and keeps it in\n"
        "# .imagegen/state.json; {env: NAME} takes it from the environment.\n"
        "controller:\n"
        "  url: https://controller.example.org/firstboot/callback\n"
        "\n"
        "tls:\n"
        "  mode: self-signed          # or certbot, with domain and email\n"
        "  domain: colony.example.org\n"
        "\n"
        "# With the modules baked into the image (imagegen bake), the user-data\n"
        "# carries only configuration and fits even EC2's 16 KB.\n"
        "ship_modules: false\n"
        "\n"
        "# Modules and their inputs (modules/<id>/manifest.yml says what each\n"
        "# takes). Passwords and keys left out are generated and kept.\n"
        "modules:\n"
        "  base: {}                   # deploy user (root's SSH keys), SSH hardening, ufw\n"
        "  docker: {}\n"
        "  postgres:\n"
        "    db_name: colony\n"
        "    db_user: colony\n"
        "  redis: {}\n"
        "  colonyos:\n"
        "    colony_name: cpm_colony\n"
        "  agent-manager:\n"
        "    auth_mode: api_key\n"
        "    git_repo_url: https://git.example.org/colony/agents.git\n"
        "  compose-up: {}\n"
        "  nginx: {}\n"
        "  # Encrypted with age to this public key; its private key is\n"
        "  # backup-identity.txt next to this file (never on the server): keep it\n"
        "  # safe, restore_db.sh --identity needs it.\n"
        "  backup:\n"
        "    age_recipients: %s\n"
        "  update: {}\n"
        "\n"
        "files:\n"
        "  - {path: /etc/motd, source: files/motd, mode: \"0644\"}\n";

static const char motd[] = "This server was provisioned by firstboot.\n";

int cmd_init(int argc, char **argv)
{
        if (argc == 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                puts("Usage: imagegen init DIR\n\nWrites DIR/site.yaml, a working example "
                     "site for the whole stack, DIR/files/, and DIR/backup-identity.txt (the "
                     "private age key its backups are encrypted to).");
                return 0;
        }
        if (argc != 2) {
                fputs("Usage: imagegen init DIR\n", stderr);
                return 2;
        }
        const char *dir = argv[1];
        _cleanup_free_ char *site = strprintf("%s/site.yaml", dir);
        _cleanup_free_ char *m = strprintf("%s/files/motd", dir);
        _cleanup_free_ char *idpath = strprintf("%s/backup-identity.txt", dir);
        if (path_exists(site)) {
                fprintf(stderr, "imagegen init: %s exists; not overwriting it\n", site);
                return 1;
        }
        if (path_exists(idpath)) {
                fprintf(stderr, "imagegen init: %s exists; not overwriting it\n", idpath);
                return 1;
        }
        /* The backups' key pair, as age-keygen writes it. */
        _cleanup_free_ char *identity = NULL, *recipient = NULL;
        int r = age_keygen(&identity, &recipient);
        if (r < 0) {
                fprintf(stderr, "imagegen init: cannot make the backups' key: %s\n", strerror(-r));
                return 1;
        }
        _cleanup_free_ char *idtext =
                strprintf("# The private key of the backups (age; imagegen init).\n"
                          "# public key: %s\n%s\n",
                          recipient, identity);
        explicit_bzero(identity, strlen(identity));
        _cleanup_free_ char *yaml = strprintf(site_yaml, recipient);
        r = mkdir_p(dir, 0755);
        if (r >= 0)
                r = mkdir_parents(m, 0755);
        if (r >= 0)
                r = write_file_atomic(m, motd, strlen(motd), 0644, (uid_t)-1, (gid_t)-1);
        if (r >= 0)
                r = write_file_atomic(idpath, idtext, strlen(idtext), 0600, (uid_t)-1, (gid_t)-1);
        explicit_bzero(idtext, strlen(idtext));
        if (r >= 0)
                r = write_file_atomic(site, yaml, strlen(yaml), 0644, (uid_t)-1, (gid_t)-1);
        if (r < 0) {
                fprintf(stderr, "imagegen init: cannot write into %s: %s\n", dir, strerror(-r));
                return 1;
        }
        printf("%s: example site written; next: imagegen validate %s\n", site, site);
        printf("%s: the private key of the backups (0600): keep it off the server\n", idpath);
        return 0;
}
