/* The agent's own checks of a verified job (common/job.h did the wire
 * format and the signature): a job_id seen before (replay), an app_id
 * that is no module in the modules directory (the whitelist: a job never
 * carries code), inputs its manifest refuses. */
#pragma once

#include "job.h"
#include "manifest.h"

/* The state directory's record of the job ids taken, each with the unix
 * time until which it is remembered (its issued_at plus the skew: after
 * that the skew check refuses it anyway). */
#define JOBS_SEEN_FILE "jobs-seen"
#define JOBS_SEEN_MAX  100000

/* Records job_id in path (inside the root rootfd) until `until`, durably,
 * dropping the entries whose time has passed. 0 when recorded; -EEXIST
 * when it is there already (a replay); -ENOSPC when JOBS_SEEN_MAX ids are
 * remembered; -EBADMSG for a record that makes no sense (it is then
 * rewritten from its good lines, a bad one is not a replay); other
 * negative errnos from reading or writing it. */
int jobs_seen_record(int rootfd, const char *path, const char *job_id, long long until,
                     long long now);
/* The same, for a daemon: the record read once (jobs_seen_new() reads
 * nothing yet), then only the lines appended since, so a job costs O(1),
 * not a read of every id remembered. jobs_seen_add() returns what
 * jobs_seen_record() does. */
struct jobs_seen;
struct jobs_seen *jobs_seen_new(int rootfd, const char *path);
int jobs_seen_add(struct jobs_seen *s, const char *job_id, long long until, long long now);
void jobs_seen_free(struct jobs_seen *s);

struct job_module {
        struct manifest *m;
        char *dir; /* the module's directory, under root */
        struct input_values in;
};

/* Finds j->app_id in modules_dir (on the server, under root; NULL root
 * for /) and checks j->inputs against its manifest. 0 and *ret filled,
 * or JOB_UNKNOWN_APP / JOB_BAD_INPUTS with info filled; -ENOMEM. */
int jobs_find_module(const struct job *j, const char *root, const char *modules_dir,
                     struct job_module *ret, struct job_refusal_info *info);
void job_module_done(struct job_module *jm);
