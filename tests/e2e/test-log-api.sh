#!/bin/bash
# The log API makes the "errno 0 returned as success" mistake a compile
# error: a *_errno helper given a constant 0 does not build, and the plain
# helpers (log_error ...) return void, so `return log_error(...)` in a
# function returning int does not build either. Each snippet is compiled
# with the project's warnings against common/log.h; the good one must
# build, so a failure of the bad ones is the check and not a broken setup.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

CC=${CC:-cc}
# compile NAME: compiles $T/NAME.c (standard error in $T/NAME.err).
compile() {
	"$CC" -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -iquote "$TOP/common" -c "$T/$1.c" \
		-o "$T/$1.o" 2>"$T/$1.err"
}
snippet() { # NAME BODY: a file with an int function whose body is BODY
	printf '#include <errno.h>\n#include "log.h"\nint f(int r);\nint f(int r)\n{\n%s\n}\n' "$2" >"$T/$1.c"
}

snippet good '	if (r < 0)
		return log_error_errno(r, "Failed: %m");
	if (r == 1)
		return log_warning_errno(errno, "Odd: %m");
	log_error("plain %d", r);
	log_info("fine");
	return log_full_errno(LOG_NOTICE, -EIO, NULL, "x %d", r);'
t_case "correct uses of the log helpers compile"
if compile good; then t_pass; else t_fail "$(cat "$T/good.err")"; fi

snippet zero '	(void)r;
	return log_error_errno(0, "Failed: %m");'
t_case "log_error_errno(0, ...) does not compile"
if ! compile zero && grep -q log_errno_must_not_be_0 "$T/zero.err"; then t_pass; else
	t_fail "it compiled, or for another reason: $(cat "$T/zero.err")"
fi

snippet zeroexpr '	(void)r;
	return log_warning_errno(1 - 1, "Failed: %m");'
t_case "log_warning_errno(1 - 1, ...) (a constant expression) does not compile"
if ! compile zeroexpr && grep -q log_errno_must_not_be_0 "$T/zeroexpr.err"; then t_pass; else
	t_fail "it compiled, or for another reason: $(cat "$T/zeroexpr.err")"
fi

snippet fullzero '	(void)r;
	return log_full_errno(LOG_ERR, 0, NULL, "Failed");'
t_case "log_full_errno(prio, 0, ...) does not compile"
if ! compile fullzero && grep -q log_errno_must_not_be_0 "$T/fullzero.err"; then t_pass; else
	t_fail "it compiled, or for another reason: $(cat "$T/fullzero.err")"
fi

for h in log_error log_warning log_notice log_info log_debug; do
	snippet "ret-$h" "	(void)r;
	return $h(\"Failed\");"
	t_case "return $h(...) in a function returning int does not compile"
	if ! compile "ret-$h" && grep -Eq "void value not ignored|returning .void. from a function" "$T/ret-$h.err"; then t_pass; else
		t_fail "it compiled, or for another reason: $(cat "$T/ret-$h.err")"
	fi
done

snippet assign '	int k = log_error("Failed %d", r);
	return k;'
t_case "int k = log_error(...) does not compile"
if ! compile assign && grep -Eq "void value not ignored|initializing .int. with an expression of incompatible type .void." "$T/assign.err"; then t_pass; else
	t_fail "it compiled, or for another reason: $(cat "$T/assign.err")"
fi
