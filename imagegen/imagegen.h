/* imagegen's commands and installed paths. */
#pragma once

#define MODULES_DIR_DEFAULT   "/usr/lib/firstboot/modules"
#define TEMPLATES_DIR_DEFAULT "/usr/share/imagegen/templates"
/* What `bake` installs when not run from a build tree: the agent and
 * units/ (the imagegen package ships them here). */
#define BAKE_DIR_DEFAULT "/usr/lib/imagegen"

/* DIR/../rel next to the running binary when it has probe (a build
 * tree), else installed. */
char *default_dir(const char *rel, const char *installed, const char *probe);

int cmd_init(int argc, char **argv);
int cmd_bake(int argc, char **argv);
int cmd_job(int argc, char **argv);
