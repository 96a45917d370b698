#!/bin/bash
# The backup module through the real agent on a temporary root with
# recorders (the timer units, backup.conf, the age recipients checked by
# the real age, the S3 credentials file, the MySQL option file, a second
# run, changed and removed settings, bad input, a missing or broken
# script), and backup_db.sh as imagegen renders it, run on that root with
# a docker recorder: the dump encrypted and written 0600, old dumps
# removed, the upload to an S3 endpoint on loopback (real curl, SigV4, the
# secret never on its command line), and the failures (exit 1 without a
# partial file, exit 2 with the dump kept). The real PostgreSQL round trip
# is tests/e2e/test-backup-restore.sh.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

t_check "the backup manifest validates" "$FIRSTBOOT" validate "$TOP/modules/backup/manifest.yml"

age-keygen -o "$T/id.txt" 2>/dev/null
RCPT=$(age-keygen -y "$T/id.txt")
age-keygen -o "$T/id2.txt" 2>/dev/null
RCPT2=$(age-keygen -y "$T/id2.txt")
ssh-keygen -q -t ed25519 -N '' -C ops@example.org -f "$T/ed" && ED=$(cat "$T/ed.pub")
ssh-keygen -q -t rsa -b 1024 -N '' -f "$T/rsa1024" && RSA1024=$(cut -d' ' -f1,2 "$T/rsa1024.pub")
AK=AKIDEXAMPLE0123
SK='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY='
# fresh NAME [FIXTURE]: a root with backup_db.sh rendered from
# tests/cases/templates/FIXTURE.json, and recorders.
fresh() {
	R=$T/$1
	mod_root "$R"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}" ${3:+mysqldump}
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

t_case "the timer installed: age installed, the recipients file, backup dir 0700, backup.conf 0600, units that verify, enabled and started"
fresh c1
if mod_run "$R" backup age_recipients="$RCPT" && [ "$(stat -c %a "$R/var/backups/firstboot-stack")" = 700 ] &&
	[ "$(stat -c %a "$R/etc/firstboot-stack/backup.conf")" = 600 ] && mod_called '^apt-get .*install --no-install-recommends age$' &&
	[ "$(cat "$R/etc/firstboot-stack/backup-recipients.txt")" = "$RCPT" ] &&
	conf | grep -qx 'BACKUP_DIR=/var/backups/firstboot-stack' && conf | grep -qx 'RETENTION_DAYS=30' &&
	conf | grep -qx 'KEEP_LOCAL=true' && conf | grep -qx 'AGE_RECIPIENTS_FILE=/etc/firstboot-stack/backup-recipients.txt' &&
	! conf | grep -q MYSQL_ && [ ! -e "$R/etc/firstboot-stack/backup-my.cnf" ] &&
	! conf | grep -q S3_ && [ ! -e "$R/etc/firstboot-stack/backup-s3.curl" ] &&
	grep -qx 'OnCalendar=\*-\*-\* 03:15:00' "$R/etc/systemd/system/firstboot-backup.timer" &&
	grep -qx 'ExecStart=/usr/local/sbin/backup_db.sh' "$R/etc/systemd/system/firstboot-backup.service" &&
	mod_order '^systemctl daemon-reload' '^systemctl enable firstboot-backup.timer' '^systemctl start firstboot-backup.timer' &&
	verify_units; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';') $(cat "$T/verify" 2>/dev/null)"; fi

t_case "a second run changes nothing"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" backup age_recipients="$RCPT" && mod_not_called '^systemctl (daemon-reload|enable|start|restart)' &&
	[ "$(tree_snapshot "$R")" = "$before" ]; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "a new retention, nothing else: backup.conf rewritten, no systemctl action, nothing installed"
mod_reset_calls
if mod_run "$R" backup age_recipients="$RCPT" retention_days=60 && conf | grep -qx 'RETENTION_DAYS=60' &&
	mod_not_called '^systemctl (daemon-reload|enable|start|restart|stop|reload)|^apt-get'; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "S3 and a new schedule: credentials in a 0600 curl config, the timer reloaded and restarted, the secret nowhere else"
mod_reset_calls
if mod_run "$R" backup age_recipients="$RCPT" schedule="Sun *-*-* 04:00:00" retention_days=90 s3_bucket=colony-backups s3_region=eu-central-1 \
	s3_prefix=colony-1/ s3_access_key="$AK" s3_secret_key="$SK" &&
	[ "$(stat -c %a "$R/etc/firstboot-stack/backup-s3.curl")" = 600 ] &&
	grep -qxF "user = \"$AK:$SK\"" "$R/etc/firstboot-stack/backup-s3.curl" &&
	conf | grep -qx 'S3_BUCKET=colony-backups' && conf | grep -qx 'S3_ENDPOINT=https://s3.eu-central-1.amazonaws.com' &&
	conf | grep -qx 'RETENTION_DAYS=90' && ! conf | grep -qF "$SK" &&
	grep -qx 'OnCalendar=Sun \*-\*-\* 04:00:00' "$R/etc/systemd/system/firstboot-backup.timer" &&
	mod_order '^systemctl daemon-reload' '^systemctl restart firstboot-backup.timer' &&
	[ "$(mod_calls systemctl | grep -Ec '^systemctl (daemon-reload|restart)')" = 2 ] && mod_not_called '^apt-get' &&
	mod_no_secrets "$R" "$SK"; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "S3 taken out again: the credentials file is removed"
if mod_run "$R" backup age_recipients="$RCPT" && [ ! -e "$R/etc/firstboot-stack/backup-s3.curl" ] && ! conf | grep -q S3_; then t_pass; else
	t_fail "still there"
fi

t_case "a MySQL database without mysqldump (base's mysql_client not set) is exit 3 before anything is written"
fresh c1m full-compose
# A PATH without mysqldump (this machine may have the client installed).
mkdir -p "$T/nomysql"
IFS=: read -ra dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
	for f in "$dir"/*; do
		b=${f##*/}
		[[ $b == mysqldump || $b == mariadb-dump ]] && continue
		[ -x "$f" ] && [ ! -e "$T/nomysql/$b" ] && ln -s "$f" "$T/nomysql/$b"
	done
done
PATH=$T/nomysql mod_exec "$R" backup AGE_RECIPIENTS="$RCPT" MYSQL_DATABASE=shop
rc=$?
if [ $rc = 3 ] && grep -q "set base's mysql_client" "$MOD_ERR" && [ ! -e "$R/etc/firstboot-stack" ]; then t_pass; else
	t_fail "exit $rc $(cat "$MOD_ERR")"
fi

t_case "several recipients (commas, newlines, an SSH key with its comment), a MySQL database: one per line, the option file 0600"
fresh c1b full-compose mysqldump
if mod_run "$R" backup age_recipients="$RCPT, $ED
$RCPT2" mysql_database=shop mysql_user=backup mysql_password='pa%ss:w0rd' &&
	[ "$(cat "$R/etc/firstboot-stack/backup-recipients.txt")" = "$RCPT
$ED
$RCPT2" ] && conf | grep -qx 'MYSQL_DATABASE=shop' && conf | grep -qx 'MYSQL_DEFAULTS=/etc/firstboot-stack/backup-my.cnf' &&
	[ "$(stat -c %a "$R/etc/firstboot-stack/backup-my.cnf")" = 600 ] &&
	grep -qx 'password="pa%ss:w0rd"' "$R/etc/firstboot-stack/backup-my.cnf" && grep -qx 'user="backup"' "$R/etc/firstboot-stack/backup-my.cnf" &&
	grep -qx 'host="localhost"' "$R/etc/firstboot-stack/backup-my.cnf" && mod_no_secrets "$R" 'pa%ss:w0rd'; then t_pass; else
	t_fail "$(cat "$MOD_ERR")"
fi

t_case "MySQL taken out again: the option file is removed"
if mod_run "$R" backup age_recipients="$RCPT" && [ ! -e "$R/etc/firstboot-stack/backup-my.cnf" ] && ! conf | grep -q MYSQL_; then t_pass; else
	t_fail "still there"
fi

t_case "recipients refused by the agent (the manifest's pattern): none, a private key, garbage; nothing written"
fresh c0
mkdir -p "$R/etc/firstboot-stack"
ok=1
for v in "" "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ" "age1short" "ssh-dss AAAAB3NzaC1kc3M= x" \
	"$RCPT;rm -rf /"; do
	if mod_run "$R" backup age_recipients="$v" || ! grep -q age_recipients "$MOD_ERR"; then
		ok=0
		echo "  # '$v' accepted: $(cat "$MOD_ERR")" >&2
	fi
done
if [ $ok = 1 ] && [ -z "$(ls -A "$R/etc/firstboot-stack")" ] && mod_not_called '^systemctl'; then t_pass; else t_fail "bad recipients"; fi

t_case "a mysql_password the module cannot write is refused by the agent (the manifest's pattern), naming the input, not the value"
fresh c0p
mkdir -p "$R/etc/firstboot-stack"
ok=1
for v in 'pa"ss' 'pa ss' 'pa$s' "pa\\ss" "pa'ss" 'pa#ss'; do
	mod_reset_calls
	if mod_run "$R" backup age_recipients="$RCPT" mysql_database=shop mysql_password="$v" ||
		! grep -q "input 'mysql_password' does not match the pattern" "$MOD_ERR" ||
		grep -qF "$v" "$MOD_ERR" || [ -s "$MOD_REC/calls.txt" ]; then
		ok=0
		echo "  # '$v' accepted or shown: $(cat "$MOD_ERR")" >&2
	fi
done
if [ $ok = 1 ] && [ -z "$(ls -A "$R/etc/firstboot-stack")" ]; then t_pass; else t_fail "bad passwords"; fi

t_case "recipients age itself refuses are exit 1 before anything is written: a bad bech32 checksum, an RSA key under 2048 bits"
bad=${RCPT%?}
[ "${RCPT: -1}" = q ] && bad+=p || bad+=q
ok=1
for v in "$bad" "$RSA1024" "$RCPT, $RSA1024"; do
	mod_exec "$R" backup AGE_RECIPIENTS="$v"
	rc=$?
	if [ $rc != 1 ] || ! grep -q 'age refuses recipient' "$MOD_ERR"; then
		ok=0
		echo "  # exit $rc for '$v': $(cat "$MOD_ERR")" >&2
	fi
done
if [ $ok = 1 ] && [ -z "$(ls -A "$R/etc/firstboot-stack")" ]; then t_pass; else t_fail "bad recipients: $(ls -A "$R/etc/firstboot-stack")"; fi

t_case "bad input is exit 1: a schedule systemd refuses, half the S3 settings, a bad bucket or key, retention outside 30-180"
ok=1
for kv in "SCHEDULE=every day at noon" "SCHEDULE=*-*-* 25:00:00" "S3_BUCKET=b-1|S3_ACCESS_KEY=$AK" "S3_SECRET_KEY=$SK" \
	"S3_BUCKET=Bad_Bucket|S3_ACCESS_KEY=$AK|S3_SECRET_KEY=$SK" "S3_BUCKET=b-1|S3_ACCESS_KEY=$AK|S3_SECRET_KEY=a\"b" \
	"RETENTION_DAYS=0" "RETENTION_DAYS=29" "RETENTION_DAYS=181" "BACKUP_DIR=relative" "S3_PREFIX=../x" "KEEP_LOCAL=false" \
	"KEEP_LOCAL=yes" "MYSQL_DATABASE=a;b" "MYSQL_PASSWORD=a\"b" "MYSQL_PORT=0" "AGE_RECIPIENTS=" "AGE_RECIPIENTS=$RCPT$RCPT"; do
	IFS='|' read -ra args <<<"$kv"
	[[ $kv == AGE_RECIPIENTS=* ]] || args+=("AGE_RECIPIENTS=$RCPT")
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
mod_exec "$R" backup AGE_RECIPIENTS="$RCPT"
rc1=$?
grep -q 'not a valid bash script' "$MOD_ERR" && m1=1 || m1=0
rm "$R/usr/local/sbin/backup_db.sh"
mod_exec "$R" backup AGE_RECIPIENTS="$RCPT"
rc2=$?
if [ $rc1 = 3 ] && [ "$m1" = 1 ] && [ $rc2 = 3 ] && grep -q 'backup_db.sh is missing' "$MOD_ERR" &&
	mod_not_called '^systemctl'; then t_pass; else t_fail "exits $rc1 $rc2"; fi

t_case "the script or the backup folder a link (to a file or folder outside the root): exit 3, its mode unchanged"
fresh c3
mkdir -p "$T/c3-out"
cp "$R/usr/local/sbin/backup_db.sh" "$T/c3-out/target.sh"
chmod 0640 "$T/c3-out/target.sh"
ln -sf "$T/c3-out/target.sh" "$R/usr/local/sbin/backup_db.sh"
mod_exec "$R" backup AGE_RECIPIENTS="$RCPT"
rc1=$?
grep -q 'backup_db.sh is a symbolic link: its mode is not changed' "$MOD_ERR" && m1=1 || m1=0
fresh c3b
mkdir -p "$T/c3-out/dir" "$R/var/backups"
chmod 0755 "$T/c3-out/dir"
ln -s "$T/c3-out/dir" "$R/var/backups/firstboot-stack"
mod_exec "$R" backup AGE_RECIPIENTS="$RCPT"
rc2=$?
if [ $rc1 = 3 ] && [ "$m1" = 1 ] && [ "$(stat -c %a "$T/c3-out/target.sh")" = 640 ] && [ $rc2 = 3 ] &&
	grep -q '/var/backups/firstboot-stack: a link on the way leads out of the root: refused' "$MOD_ERR" && [ "$(stat -c %a "$T/c3-out/dir")" = 755 ]; then t_pass; else
	t_fail "exits $rc1 $rc2: $(cat "$MOD_ERR")"
fi

t_case "the backup folder a link to a folder inside the root (a mounted volume): followed, the folder it leads to made 0700, the link kept"
fresh c3c
mkdir -p "$R/var/backups" "$R/mnt/vol/backups"
chmod 0755 "$R/mnt/vol/backups"
ln -s ../../mnt/vol/backups "$R/var/backups/firstboot-stack"
mod_exec "$R" backup AGE_RECIPIENTS="$RCPT"
rc1=$?
m1=$(stat -c %a "$R/mnt/vol/backups")
# a link to a folder of the root that is not there yet: made there
fresh c3d
mkdir -p "$R/var/backups"
ln -s ../../mnt/vol2/backups "$R/var/backups/firstboot-stack"
if [ $rc1 = 0 ] && [ "$m1" = 700 ] && [ -L "$T/c3c/var/backups/firstboot-stack" ] &&
	mod_exec "$R" backup AGE_RECIPIENTS="$RCPT" && [ "$(stat -c %a "$R/mnt/vol2/backups")" = 700 ] && [ -L "$R/var/backups/firstboot-stack" ]; then t_pass; else
	t_fail "exit $rc1 (mode $m1): $(cat "$MOD_ERR")"
fi

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
mkdir -p "$D" "$R/etc/firstboot-stack"
echo "$RCPT" >"$R/etc/firstboot-stack/backup-recipients.txt"
touch -d '40 days ago' "$D/colony-20240101T000000Z.dump.age"
touch -d '5 days ago' "$D/colony-20240116T000000Z.dump.age"
touch -d '40 days ago' "$D/notes.txt"

t_case "backup_db.sh (compose): pg_dump in the postgres container, encrypted, 0600, dumps past retention removed"
if backup && dump=$(find "$D" -name 'colony-2*Z.dump.age' -newer "$D/colony-20240116T000000Z.dump.age") && [ -n "$dump" ] &&
	! grep -q 'PGDMP' "$dump" && [ "$(age -d -i "$T/id.txt" "$dump")" = "PGDMP fake dump of colony" ] &&
	[ "$(stat -c %a "$dump")" = 600 ] &&
	[ "$(stat -c %a "$D")" = 700 ] && [ ! -e "$D/colony-20240101T000000Z.dump.age" ] &&
	[ -e "$D/colony-20240116T000000Z.dump.age" ] && [ -e "$D/notes.txt" ] &&
	mod_called "^docker compose -f $R/opt/stack/docker-compose.yml exec -T postgres pg_dump -U colony -d colony -Fc\$" &&
	grep -q 'removed /var/backups/firstboot-stack/colony-20240101T000000Z.dump.age' "$T/b.out"; then t_pass; else
	t_fail "$(cat "$T/b.err") $(ls -la "$D")"
fi

t_case "backup_db.sh: S3 upload to a loopback endpoint with SigV4, the secret only in the curl config"
s3_port=""
modb_http s3
mkdir -p "$R/etc/firstboot-stack"
printf 'BACKUP_DIR=/var/backups/firstboot-stack\nRETENTION_DAYS=30\nS3_BUCKET=colony-backups\nS3_ENDPOINT=http://127.0.0.1:%s\nS3_REGION=eu-central-1\nS3_PREFIX=colony-1/\nS3_CREDENTIALS=/etc/firstboot-stack/backup-s3.curl\n' \
	"$s3_port" >"$R/etc/firstboot-stack/backup.conf"
printf 'user = "%s:%s"\n' "$AK" "$SK" >"$R/etc/firstboot-stack/backup-s3.curl"
chmod 0600 "$R/etc/firstboot-stack/backup.conf" "$R/etc/firstboot-stack/backup-s3.curl"
mod_passthrough curl
mod_reset_calls
sleep 1.1 # a new dump name (they are per second)
if backup && put=$(find "$T/s3.port.put/colony-backups/colony-1" -name 'colony-*.dump.age' | head -n1) && [ -n "$put" ] &&
	cmp -s "$put" "$D/$(basename "$put")" &&
	grep -q "^Authorization: AWS4-HMAC-SHA256 Credential=$AK/[0-9]*/eu-central-1/s3/aws4_request" "$put.headers" &&
	mod_called "^curl .* -K $R/etc/firstboot-stack/backup-s3.curl " && mod_no_secrets "$R" "$SK"; then t_pass; else
	t_fail "$(cat "$T/b.err") $(mod_calls curl)"
fi

t_case "backup_db.sh: an upload that fails is exit 2 and the dump is kept"
sed -i "s|^S3_ENDPOINT=.*|S3_ENDPOINT=http://127.0.0.1:1|" "$R/etc/firstboot-stack/backup.conf"
n=$(find "$D" -name 'colony-*.dump.age' | wc -l)
sleep 1.1
backup
rc=$?
if [ $rc = 2 ] && [ "$(find "$D" -name 'colony-*.dump.age' | wc -l)" = $((n + 1)) ] && grep -q 'kept locally' "$T/b.err"; then
	t_pass
else t_fail "exit $rc"; fi

t_case "backup_db.sh: a failing pg_dump is exit 1 and leaves no file behind"
rm "$R/etc/firstboot-stack/backup.conf"
mod_fail docker 1 'pg_dump'
before=$(ls -A "$D")
sleep 1.1
backup
rc=$?
if [ $rc = 1 ] && [ "$(ls -A "$D")" = "$before" ] && grep -q 'pg_dump of colony in the postgres container failed' "$T/b.err"; then
	t_pass
else t_fail "exit $rc"; fi

t_case "backup_db.sh (native PostgreSQL): pg_dump as the postgres user"
fresh d2 native-systemd
mkdir -p "$R/etc/firstboot-stack"
echo "$RCPT" >"$R/etc/firstboot-stack/backup-recipients.txt"
mod_ctl runuser <<'EOS'
echo "PGDMP native"
EOS
if backup && mod_called '^runuser -u postgres -- pg_dump -d colony -Fc$' && mod_not_called '^docker' &&
	[ "$(age -d -i "$T/id.txt" "$R"/var/backups/firstboot-stack/colony-*.dump.age)" = "PGDMP native" ]; then t_pass; else t_fail "$(cat "$T/b.err")"; fi

t_case "backup_db.sh with no recipients file refuses to dump: exit 1, nothing written"
rm "$R/etc/firstboot-stack/backup-recipients.txt"
before=$(ls -A "$R/var/backups/firstboot-stack")
mod_reset_calls
backup
rc=$?
if [ $rc = 1 ] && grep -q 'never written unencrypted' "$T/b.err" && mod_not_called '^runuser' &&
	[ "$(ls -A "$R/var/backups/firstboot-stack")" = "$before" ]; then t_pass; else t_fail "exit $rc $(cat "$T/b.err")"; fi
