/* imagegen's commands and installed paths. */
#pragma once

#define MODULES_DIR_DEFAULT   "/usr/lib/firstboot/modules"
#define TEMPLATES_DIR_DEFAULT "/usr/share/imagegen/templates"

int cmd_init(int argc, char **argv);
