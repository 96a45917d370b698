/* The state of a provisioning run, as status.json: what `firstboot status`
 * and `analyze` read, what the controller callback is built from, and
 * what the next run carries over. */
#pragma once

#include "diag.h"
#include "node.h"

enum module_state {
        MOD_PENDING,
        MOD_RUNNING,
        MOD_DONE,
        MOD_FAILED,
        MOD_SKIPPED,
};

enum run_state {
        RUN_RUNNING,
        RUN_READY,
        RUN_FAILED,
};

struct module_status {
        char *id;
        enum module_state state;
        char *frequency;
        unsigned attempts;
        int exit_code;         /* -1 when it never finished */
        long long started_ms;  /* wall clock, ms since the epoch; 0 never */
        long long duration_ms; /* all attempts, backoff included */
        char *reason;          /* why it failed or was skipped */
        bool ran;              /* executed by this run (not done earlier) */
        char *why;             /* why it ran or not: "first run", "inputs changed: port", ... */
};

struct run_status {
        enum run_state state;
        char *instance_id, *source, *hostname, *bundle;
        long long started_ms, finished_ms;
        long long agent_ms; /* the agent's own time: total less module time */
        unsigned boot;      /* how many runs this instance has had */
        char *error;        /* a failure before modules ran (bad user-data, ...) */
        char *current;      /* the module running now */
        char *ready_marker; /* the marker's path (under the root) this run writes */
        struct module_status *modules;
        size_t n_modules;
        char *phone_home; /* "none", "sent", "failed" */
        unsigned phone_home_attempts;
        char *phone_home_error;
        unsigned progress_sent, progress_dropped; /* module events to the controller */
        char **dropped_files; /* files the last bundle wrote that this one no longer lists */
};

const char *module_state_to_string(enum module_state s);
const char *run_state_to_string(enum run_state s);

struct module_status *run_status_add(struct run_status *s, const char *id);
struct module_status *run_status_find(const struct run_status *s, const char *id);

/* As a JSON-ready tree / JSON text (stable; documented in the README). */
struct node *run_status_to_node(const struct run_status *s);
/* sync: durable when it returns (file and directory fsync'd, also when the
 * text was there already): a run's final status; progress updates skip it.
 * path is resolved inside the root rootfd (fs.h), its directory made 0700. */
int run_status_write(int rootfd, const char *path, const struct run_status *s, bool sync);
/* path is resolved inside the root rootfd and must be a regular file (a
 * FIFO is -EINVAL, not waited on); label names it in diagnostics. */
int run_status_read(int rootfd, const char *path, const char *label, struct run_status *ret,
                    struct diags *d);
void run_status_free(struct run_status *s);
