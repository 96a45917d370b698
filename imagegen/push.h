/* imagegen push: a rendered bundle to running servers over ssh. For each
 * host the system's ssh client runs `firstboot plan --user-data -` and,
 * when the plan has changes, `firstboot apply --user-data -`, the
 * user-data on ssh's standard input both times (no file is left on the
 * server, no path is quoted into a remote command line). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define PUSH_JOBS_DEFAULT 4
#define PUSH_JOBS_MAX     64

struct push_target {
        const char *name; /* the site's host name: what output and errors say */
        const char *dest; /* ssh's destination ([user@]host) */
        const char *data; /* the user-data (gzip'd tar) */
        size_t size;
};

struct push_options {
        char **ssh_options;    /* each passed to ssh as -o OPTION */
        const char *firstboot; /* the remote command before `plan ...`; default "firstboot" */
        bool plan_only;        /* stop after the plan, exit with its code */
        bool quiet;            /* no "nothing to do"/"applied" lines */
        unsigned jobs;         /* hosts at a time (several targets) */
};

/* Pushes to every target: one at a time with output as it comes when n is
 * 1, else up to o->jobs at a time, every line prefixed with its host's
 * name. Every host is done even when another fails. The exit code: 0
 * every host applied (or had nothing to do), 1 any failed, and with
 * plan_only 2 when any host has changes pending and none failed. */
int push_run(const struct push_target *t, size_t n, const struct push_options *o);
