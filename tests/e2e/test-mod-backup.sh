#!/bin/bash
# The backup module through the real agent on a temporary root with
# recorders (the timer units, backup.conf, the S3 credentials file, a
# second run, changed and removed settings, bad input, a missing or
# broken script), and backup_db.sh as imagegen renders it, run on that
# root: the dump written 0600, old dumps removed, the upload to an S3
# endpoint on loopback (real curl, SigV4, the secret never on its command
# line), and the failures (exit 1 without a partial file, exit 2 with the
# dump kept).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

t_check "the backup manifest validates" "$FIRSTBOOT" validate "$TOP/modules/backup/manifest.yml"

AK=AKIDEXAMPLE0123
SK='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY='
# fresh NAME [FIXTURE]: a root with backup_db.sh rendered from
# tests/cases/templates/FIXTURE.json, and recorders.
fresh() {
	R=$T/$1
	mod_root "$R"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}"
	mkdir -p "$R/usr/local/sbin"
	modb_render backup_db.sh.tmpl "$TOP/tests/cases/templates/${2:-full-compose}.json" "$R/usr/local/sbin/backup_db.sh" 0755
}
conf() { cat "$R/etc/firstboot-stack/backup.conf"; }
# verify_units: the module's units pass systemd-analyze verify (with an
# ExecStart that exists here).
verify_units() {
	mkdir -p "$T/units"
	sed 's|^ExecStart=.*|ExecStart=/bin/true|' "$R/etc/systemd/system/firstboot-backup.service" >"$T/units/firstboot-backup.service"
	cp "$R/etc/systemd/system/firstboot-backup.timer" "$T/units/"
	systemd-analyze verify --man=no "$T/units/firstboot-backup.service" "$T/units/firstboot-backup.timer" >"$T/verify" 2>&1 &&
		[ ! -s "$T/verify" ]
}

t_case "the timer installed: backup dir 0700, backup.conf 0600, units that verify, enabled and started"
fresh c1
if mod_run "$R" backup && [ "$(stat -c %a "$R/var/backups/firstboot-stack")" = 700 ] &&
	[ "$(stat -c %a "$R/etc/firstboot-stack/backup.conf")" = 600 ] &&
	conf | grep -qx 'BACKUP_DIR=/var/backups/firstboot-stack' && conf | grep -qx 'RETENTION_DAYS=14' &&
	! conf | grep -q S3_ && [ ! -e "$R/etc/firstboot-stack/backup-s3.curl" ] &&
	grep -qx 'OnCalendar=\*-\*-\* 03:15:00' "$R/etc/systemd/system/firstboot-backup.timer" &&
	grep -qx 'ExecStart=/usr/local/sbin/backup_db.sh' "$R/etc/systemd/system/firstboot-backup.service" &&
	mod_order '^systemctl daemon-reload' '^systemctl enable firstboot-backup.timer' '^systemctl start firstboot-backup.timer' &&
	verify_units; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';') $(cat "$T/verify" 2>/dev/null)"; fi

t_case "a second run changes nothing"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" backup && mod_not_called '^systemctl (daemon-reload|enable|start|restart)' &&
	[ "$(tree_snapshot "$R")" = "$before" ]; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "S3 and a new schedule: credentials in a 0600 curl config, the timer reloaded and restarted, the secret nowhere else"
mod_reset_calls
if mod_run "$R" backup schedule="Sun *-*-* 04:00:00" retention_days=30 s3_bucket=colony-backups s3_region=eu-central-1 \
	s3_prefix=colony-1/ s3_access_key="$AK" s3_secret_key="$SK" &&
	[ "$(stat -c %a "$R/etc/firstboot-stack/backup-s3.curl")" = 600 ] &&
	grep -qxF "user = \"$AK:$SK\"" "$R/etc/firstboot-stack/backup-s3.curl" &&
	conf | grep -qx 'S3_BUCKET=colony-backups' && conf | grep -qx 'S3_ENDPOINT=https://s3.eu-central-1.amazonaws.com' &&
	conf | grep -qx 'RETENTION_DAYS=30' && ! conf | grep -qF "$SK" &&
	grep -qx 'OnCalendar=Sun \*-\*-\* 04:00:00' "$R/etc/systemd/system/firstboot-backup.timer" &&
	mod_order '^systemctl daemon-reload' '^systemctl restart firstboot-backup.timer' &&
	mod_no_secrets "$R" "$SK"; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "S3 taken out again: the credentials file is removed"
if mod_run "$R" backup && [ ! -e "$R/etc/firstboot-stack/backup-s3.curl" ] && ! conf | grep -q S3_; then t_pass; else
	t_fail "still there"
fi

t_case "bad input is exit 1: a schedule systemd refuses, half the S3 settings, a bad bucket or key"
ok=1
for kv in "SCHEDULE=every day at noon" "SCHEDULE=*-*-* 25:00:00" "S3_BUCKET=b-1|S3_ACCESS_KEY=$AK" "S3_SECRET_KEY=$SK" \
	"S3_BUCKET=Bad_Bucket|S3_ACCESS_KEY=$AK|S3_SECRET_KEY=$SK" "S3_BUCKET=b-1|S3_ACCESS_KEY=$AK|S3_SECRET_KEY=a\"b" \
	"RETENTION_DAYS=0" "BACKUP_DIR=relative" "S3_PREFIX=../x"; do
	IFS='|' read -ra args <<<"$kv"
	mod_exec "$R" backup "${args[@]}"
	rc=$?
	[ $rc = 1 ] || {
		ok=0
		echo "  # $kv: exit $rc" >&2
	}
done
if [ $ok = 1 ]; then t_pass; else t_fail "bad input"; fi

t_case "the script missing or not valid bash: exit 3"
fresh c2
echo 'if then' >>"$R/usr/local/sbin/backup_db.sh"
mod_exec "$R" backup
rc1=$?
grep -q 'not a valid bash script' "$MOD_ERR" && m1=1 || m1=0
rm "$R/usr/local/sbin/backup_db.sh"
mod_exec "$R" backup
rc2=$?
if [ $rc1 = 3 ] && [ "$m1" = 1 ] && [ $rc2 = 3 ] && grep -q 'backup_db.sh is missing' "$MOD_ERR" &&
	mod_not_called '^systemctl'; then t_pass; else t_fail "exits $rc1 $rc2"; fi

# ---- backup_db.sh itself ------------------------------------------------

# backup: the rendered script on $R with the recorders, output in
# $T/b.out and $T/b.err.
backup() {
	env PATH="$MOD_REC/bin:$PATH" STACK_ROOT="$R" bash "$R/usr/local/sbin/backup_db.sh" >"$T/b.out" 2>"$T/b.err"
}
fresh d1
mod_ctl docker <<'EOS'
case "$*" in
"compose version") echo "Docker Compose version v2.24.0" ;;
*" pg_dump "*) printf 'PGDMP fake dump of %s\n' "${*: -2:1}" ;;
esac
EOS
D=$R/var/backups/firstboot-stack
mkdir -p "$D"
touch -d '20 days ago' "$D/colony-20240101T000000Z.dump"
touch -d '5 days ago' "$D/colony-20240116T000000Z.dump"
touch -d '20 days ago' "$D/notes.txt"

t_case "backup_db.sh (compose): pg_dump in the postgres container, the dump 0600, dumps past retention removed"
if backup && dump=$(find "$D" -name 'colony-2*Z.dump' -newer "$D/colony-20240116T000000Z.dump") && [ -n "$dump" ] &&
	[ "$(cat "$dump")" = "PGDMP fake dump of colony" ] && [ "$(stat -c %a "$dump")" = 600 ] &&
	[ "$(stat -c %a "$D")" = 700 ] && [ ! -e "$D/colony-20240101T000000Z.dump" ] &&
	[ -e "$D/colony-20240116T000000Z.dump" ] && [ -e "$D/notes.txt" ] &&
	mod_called "^docker compose -f $R/opt/stack/docker-compose.yml exec -T postgres pg_dump -U colony -d colony -Fc\$" &&
	grep -q 'removed /var/backups/firstboot-stack/colony-20240101T000000Z.dump' "$T/b.out"; then t_pass; else
	t_fail "$(cat "$T/b.err") $(ls -la "$D")"
fi

t_case "backup_db.sh: S3 upload to a loopback endpoint with SigV4, the secret only in the curl config"
s3_port=""
modb_http s3
mkdir -p "$R/etc/firstboot-stack"
printf 'BACKUP_DIR=/var/backups/firstboot-stack\nRETENTION_DAYS=14\nS3_BUCKET=colony-backups\nS3_ENDPOINT=http://127.0.0.1:%s\nS3_REGION=eu-central-1\nS3_PREFIX=colony-1/\nS3_CREDENTIALS=/etc/firstboot-stack/backup-s3.curl\n' \
	"$s3_port" >"$R/etc/firstboot-stack/backup.conf"
printf 'user = "%s:%s"\n' "$AK" "$SK" >"$R/etc/firstboot-stack/backup-s3.curl"
chmod 0600 "$R/etc/firstboot-stack/backup.conf" "$R/etc/firstboot-stack/backup-s3.curl"
mod_passthrough curl
mod_reset_calls
sleep 1.1 # a new dump name (they are per second)
if backup && put=$(find "$T/s3.port.put/colony-backups/colony-1" -name 'colony-*.dump' | head -n1) && [ -n "$put" ] &&
	cmp -s "$put" "$D/$(basename "$put")" &&
	grep -q "^Authorization: AWS4-HMAC-SHA256 Credential=$AK/[0-9]*/eu-central-1/s3/aws4_request" "$put.headers" &&
	mod_called "^curl .* -K $R/etc/firstboot-stack/backup-s3.curl " && mod_no_secrets "$R" "$SK"; then t_pass; else
	t_fail "$(cat "$T/b.err") $(mod_calls curl)"
fi

t_case "backup_db.sh: an upload that fails is exit 2 and the dump is kept"
sed -i "s|^S3_ENDPOINT=.*|S3_ENDPOINT=http://127.0.0.1:1|" "$R/etc/firstboot-stack/backup.conf"
n=$(find "$D" -name 'colony-*.dump' | wc -l)
sleep 1.1
backup
rc=$?
if [ $rc = 2 ] && [ "$(find "$D" -name 'colony-*.dump' | wc -l)" = $((n + 1)) ] && grep -q 'kept locally' "$T/b.err"; then
	t_pass
else t_fail "exit $rc"; fi

t_case "backup_db.sh: a failing pg_dump is exit 1 and leaves no file behind"
rm "$R/etc/firstboot-stack/backup.conf"
mod_fail docker 1 'pg_dump'
before=$(ls -A "$D")
backup
rc=$?
if [ $rc = 1 ] && [ "$(ls -A "$D")" = "$before" ] && grep -q 'pg_dump of colony in the postgres container failed' "$T/b.err"; then
	t_pass
else t_fail "exit $rc"; fi

t_case "backup_db.sh (native PostgreSQL): pg_dump as the postgres user"
fresh d2 native-systemd
mod_ctl runuser <<'EOS'
echo "PGDMP native"
EOS
if backup && mod_called '^runuser -u postgres -- pg_dump -d colony -Fc$' && mod_not_called '^docker' &&
	[ "$(cat "$R"/var/backups/firstboot-stack/colony-*.dump)" = "PGDMP native" ]; then t_pass; else t_fail "$(cat "$T/b.err")"; fi
