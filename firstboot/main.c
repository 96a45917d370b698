/* firstboot: provisions a server at its first boot from user-data. */
#include "commands.h"
#include "log.h"

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
} commands[] = {
        {"run", cmd_run, "fetch user-data and provision this machine"},
        {"apply", cmd_apply, "apply a new bundle to this server (day 2)"},
        {"plan", cmd_plan, "what run or apply would change, doing nothing"},
        {"status", cmd_status, "is provisioning ready, failed or still running"},
        {"analyze", cmd_analyze, "modules by duration, slowest first"},
        {"logs", cmd_logs, "a module's output, from the journal or the log files"},
        {"clean", cmd_clean, "forget state (and logs, machine-id) for image baking"},
        {"validate", cmd_validate, "check a bundle, user-data file or module manifest"},
        {"query", cmd_query, "show what a datasource returns, without provisioning"},
        {"agent", cmd_agent, "take signed jobs from a Redis queue and run them (a daemon)"},
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: firstboot COMMAND [OPTIONS]\n\n"
                   "Provisions this server at its first boot from user-data, and says when it\n"
                   "is ready.\n\nCommands:\n");
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
        fprintf(f, "\n  -h, --help    show this help\n"
                   "  --version     show the version\n\n"
                   "'firstboot COMMAND --help' describes a command's options; see firstboot(8).\n");
}

int main(int argc, char **argv)
{
        log_setup("firstboot");
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (streq(argv[1], "--version")) {
                printf("firstboot %s\n", FIRSTBOOT_VERSION);
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
                if (streq(argv[1], commands[i].name))
                        return commands[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "firstboot: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
}
