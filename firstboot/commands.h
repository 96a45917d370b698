/* The firstboot commands; main.c dispatches to these. Each returns the
 * process exit code: 0 success, 1 failure, 2 usage error (status has its
 * own meanings, see status.c). */
#pragma once

int cmd_run(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_agent(int argc, char **argv);
