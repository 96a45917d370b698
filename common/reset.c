/* The per-server paths firstboot forgets on `clean` and `imagegen bake`. */
#include "reset.h"

#include <errno.h>

#include "util.h"

int reset_paths(const struct config *c, bool logs, char ***ret)
{
        _cleanup_strv_free_ char **v = NULL;

        if (strv_extend(&v, c->ready_marker) < 0 || strv_extend(&v, c->state_dir) < 0 ||
            (logs && strv_extend(&v, c->log_dir) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(v);
        return 0;
}
