#!/bin/bash
# units/firstboot.catalog against firstboot/events.h and against systemd's
# own catalog compiler: one entry per MESSAGE_ID and no other, accepted by
# `journalctl --update-catalog` into a database under a temporary root
# (never the host's), and shown by `journalctl -x` next to a real failure
# logged through a private journald (tests/e2e/journal-ns.sh).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

CATALOG=$TOP/units/firstboot.catalog
EVENTS=$TOP/firstboot/events.h

# The ids, one a line, sorted (duplicates kept).
event_ids() { grep -oE '^#define MSGID_[A-Z_]+ +"[0-9a-f]{32}"' "$EVENTS" | grep -oE '[0-9a-f]{32}' | sort; }
catalog_ids() { grep -E '^-- ' "$CATALOG" | sed 's/^-- //' | sort; }

t_case "events.h defines the thirteen kinds of event, each with its own id"
if [ "$(event_ids | wc -l)" = 13 ] && [ -z "$(event_ids | uniq -d)" ]; then t_pass; else t_fail "$(event_ids)"; fi

t_case "every MESSAGE_ID in events.h has exactly one catalog entry, and vice versa"
dups=$(catalog_ids | uniq -d)
if [ -n "$dups" ]; then
	t_fail "duplicate entries: $dups"
elif ! diff <(event_ids) <(catalog_ids) >"$T/diff"; then
	t_fail "events.h (<) and the catalog (>) differ: $(tr '\n' ' ' <"$T/diff")"
else t_pass; fi

t_case "every entry has a Subject, Defined-By: firstboot and a body"
if python3 - "$CATALOG" >"$T/err" 2>&1 <<'EOP'; then t_pass; else t_fail "$(cat "$T/err")"; fi
import re, sys
text = open(sys.argv[1]).read()
entries = re.split(r"^-- ([0-9a-f]{32})\n", text, flags=re.M)[1:]
assert entries, "no entries"
for mid, body in zip(entries[::2], entries[1::2]):
    head, sep, rest = body.partition("\n\n")
    fields = dict(l.split(": ", 1) for l in head.splitlines())
    assert fields.get("Subject"), f"{mid}: no Subject"
    assert fields.get("Defined-By") == "firstboot", f"{mid}: Defined-By {fields.get('Defined-By')}"
    assert sep and len(rest.split()) >= 20, f"{mid}: no body explaining what happened"
    for f in re.findall(r"@([A-Z_]+)@", body):
        assert f in ("FIRSTBOOT_MODULE", "FIRSTBOOT_INSTANCE", "FIRSTBOOT_STAGE", "FIRSTBOOT_JOB"), f"{mid}: @{f}@ is no field of ours"
EOP

t_case "the module-failed entry tells how to see the module's output and the status"
if awk '/^-- 0f2cb10a448148c396771d544b8582e6$/ {on=1; next} /^-- / {on=0} on' "$CATALOG" >"$T/entry" &&
	grep -q 'firstboot logs @FIRSTBOOT_MODULE@' "$T/entry" && grep -q 'firstboot status' "$T/entry"; then t_pass; else t_fail "$(cat "$T/entry")"; fi

# A root with only our catalog: --update-catalog compiles it into
# CROOT/var/lib/systemd/catalog/database.
CROOT=$T/croot
mkdir -p "$CROOT/usr/lib/systemd/catalog"
cp "$CATALOG" "$CROOT/usr/lib/systemd/catalog/firstboot.catalog"

t_case "journalctl --update-catalog accepts it into a temporary database"
if ! command -v journalctl >/dev/null; then
	echo "ok - $_case # SKIP no journalctl"
elif expect_rc 0 journalctl --root="$CROOT" --update-catalog && [ ! -s "$T/err" ] &&
	[ -s "$CROOT/var/lib/systemd/catalog/database" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "journalctl --list-catalog shows every id with its subject"
if ! command -v journalctl >/dev/null; then
	echo "ok - $_case # SKIP no journalctl"
elif ! expect_rc 0 journalctl --root="$CROOT" --list-catalog; then
	t_fail "list-catalog failed"
else
	want=$(python3 - "$CATALOG" <<'EOP'
import re, sys
text = open(sys.argv[1]).read()
for mid, subj in sorted(re.findall(r"^-- ([0-9a-f]{32})\nSubject: (.*)$", text, flags=re.M)):
    print(f"{mid} firstboot: {subj}")
EOP
	)
	if [ "$want" = "$(sort "$T/out")" ] && [ "$(wc -l <"$T/out")" = 13 ]; then t_pass; else
		t_fail "$(diff <(echo "$want") <(sort "$T/out") | tr '\n' ' ')"
	fi
fi

t_case "a catalog systemd rejects is caught (the check can fail)"
BAD=$T/badroot
mkdir -p "$BAD/usr/lib/systemd/catalog"
sed '0,/^-- /s/^-- .*/Subject: payload before any id/' "$CATALOG" >"$BAD/usr/lib/systemd/catalog/firstboot.catalog"
if ! command -v journalctl >/dev/null; then
	echo "ok - $_case # SKIP no journalctl"
elif expect_rc 1 journalctl --root="$BAD" --update-catalog; then t_pass; else t_fail "accepted a broken catalog"; fi

t_case "journalctl -x explains a real module failure, with the module's name"
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null || [ ! -d /var/lib/systemd/catalog ] ||
	[ ! -s "$CROOT/var/lib/systemd/catalog/database" ]; then
	echo "ok - $_case # SKIP needs root, unshare, /var/lib/systemd/catalog and the database above"
else
	R=$T/root B=$T/b
	new_root "$R"
	fb_conf "$R"
	mkdir -p "$B"
	printf 'version: 1\nname: cat\nmodules:\n  - id: broken-mod\n' >"$B/bundle.yaml"
	mkmodule "$B" broken-mod '' <<<$'#!/bin/sh\necho "no such package" >&2\nexit 3'
	"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/ud.tgz"
	rc=0
	timeout 120 "$TOP/tests/e2e/journal-ns.sh" "$T/j" "$FIRSTBOOT" run --root "$R" --user-data "$T/ud.tgz" \
		>"$T/run.out" 2>&1 || rc=$?
	# journalctl -x reads the host's database: ours is bound over it in
	# a private mount namespace only.
	# shellcheck disable=SC2016
	timeout 60 unshare --mount --propagation private -- sh -c \
		'mount -n --bind "$1" /var/lib/systemd/catalog && journalctl -D "$2" -x --no-pager MESSAGE_ID="$3"' \
		sh "$CROOT/var/lib/systemd/catalog" "$T/j" 0f2cb10a448148c396771d544b8582e6 >"$T/x.out" 2>&1
	if [ "$rc" != 1 ]; then
		t_fail "firstboot run exited $rc: $(cat "$T/run.out")"
	elif ! grep -q 'Subject: Module broken-mod failed' "$T/x.out" ||
		! grep -q 'firstboot logs broken-mod' "$T/x.out" || ! grep -q 'Defined-By: firstboot' "$T/x.out"; then
		t_fail "$(cat "$T/x.out")"
	else t_pass; fi
fi
