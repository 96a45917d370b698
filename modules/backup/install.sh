#!/bin/bash
# backup: schedules backup_db.sh (rendered by imagegen) with a systemd
# timer, and gives it its settings: /etc/firstboot-stack/backup.conf
# (0600) and, with S3, /etc/firstboot-stack/backup-s3.curl (0600, curl's
# config syntax, read with `curl -K`, so the secret key is never on a
# command line). Run by firstboot under the module contract. Exit 1 bad
# input, 3 the script is missing or broken or systemd refused the units.
set -euo pipefail
umask 022

R=${FIRSTBOOT_ROOT:-/}
R=${R%/}
SCHEDULE=${SCHEDULE:-"*-*-* 03:15:00"}
RETENTION_DAYS=${RETENTION_DAYS:-14}
BACKUP_DIR=${BACKUP_DIR:-/var/backups/firstboot-stack}
SCRIPT=${SCRIPT:-/usr/local/sbin/backup_db.sh}
S3_BUCKET=${S3_BUCKET:-}
S3_ENDPOINT=${S3_ENDPOINT:-}
S3_REGION=${S3_REGION:-us-east-1}
S3_PREFIX=${S3_PREFIX:-}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-}
S3_SECRET_KEY=${S3_SECRET_KEY:-}

die() {
	local code=$1
	shift
	echo "backup: $*" >&2
	exit "$code"
}
say() { echo "backup: $*"; }

# put_file PATH MODE: PATH gets standard input through a temporary file
# in the same folder (created 0600, then MODE), renamed into place only
# when something differs. FILE_CHANGED=1 when it did.
put_file() {
	local path=$1 mode=$2 tmp
	FILE_CHANGED=0
	mkdir -p "$(dirname "$path")"
	tmp=$(mktemp "$path.fbtmp.XXXXXX")
	cat >"$tmp"
	chmod "$mode" "$tmp"
	if [ -f "$path" ] && [ ! -L "$path" ] && cmp -s "$tmp" "$path" &&
		[ "$(stat -c '%a %u:%g' "$path")" = "$(stat -c '%a %u:%g' "$tmp")" ]; then
		rm -f "$tmp"
		return 0
	fi
	mv -f "$tmp" "$path"
	FILE_CHANGED=1
	say "wrote ${path#"$R"}"
}

abs_path() {
	if ! [[ $2 =~ ^(/[A-Za-z0-9._-]+)+$ ]] || [[ $2 =~ /\.\.?(/|$) ]]; then
		die 1 "$1 must be an absolute path"
	fi
}

# ---- inputs -------------------------------------------------------------

[[ $SCHEDULE =~ ^[A-Za-z0-9*:/,.\ ~+-]+$ ]] || die 1 "schedule must be a systemd calendar expression like '*-*-* 03:15:00'"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze calendar "$SCHEDULE" >/dev/null 2>&1 || die 1 "schedule '$SCHEDULE' is refused by systemd-analyze calendar"
fi
if ! [[ $RETENTION_DAYS =~ ^[0-9]+$ ]] || [ "$RETENTION_DAYS" -lt 1 ] || [ "$RETENTION_DAYS" -gt 3650 ]; then
	die 1 "retention_days must be 1-3650"
fi
abs_path backup_dir "$BACKUP_DIR"
abs_path script "$SCRIPT"
[[ $S3_BUCKET =~ ^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$ ]] || die 1 "s3_bucket must be an S3 bucket name"
[[ $S3_ENDPOINT =~ ^(https?://[A-Za-z0-9.-]+(:[0-9]+)?)?$ ]] || die 1 "s3_endpoint must be https://host[:port]"
[[ $S3_REGION =~ ^[a-z0-9-]+$ ]] || die 1 "s3_region must be a region name like eu-central-1"
if ! [[ $S3_PREFIX =~ ^[A-Za-z0-9._/-]*$ ]] || [[ $S3_PREFIX =~ (^|/)\.\.(/|$) ]]; then
	die 1 "s3_prefix may hold letters, digits, '.', '_', '-' and '/' (no '..')"
fi
[[ $S3_ACCESS_KEY =~ ^[A-Za-z0-9]*$ ]] || die 1 "s3_access_key must be letters and digits"
[[ $S3_SECRET_KEY =~ ^[A-Za-z0-9/+=]*$ ]] || die 1 "s3_secret_key may hold letters, digits, '/', '+' and '='"
s3=0
if [ -n "$S3_BUCKET$S3_ACCESS_KEY$S3_SECRET_KEY" ]; then
	if [ -z "$S3_BUCKET" ] || [ -z "$S3_ACCESS_KEY" ] || [ -z "$S3_SECRET_KEY" ]; then
		die 1 "S3 uploads need s3_bucket, s3_access_key and s3_secret_key together"
	fi
	s3=1
fi

# ---- the script and its settings ----------------------------------------

[ -f "$R$SCRIPT" ] || die 3 "$SCRIPT is missing: render the site with imagegen (backup and postgres in site.yaml)"
bash -n "$R$SCRIPT" || die 3 "$SCRIPT is not a valid bash script"
[ -x "$R$SCRIPT" ] || chmod 0755 "$R$SCRIPT"

if [ ! -d "$R$BACKUP_DIR" ]; then
	mkdir -p "$R$BACKUP_DIR"
	say "created $BACKUP_DIR"
fi
[ "$(stat -c '%a' "$R$BACKUP_DIR")" = 700 ] || chmod 0700 "$R$BACKUP_DIR"

conf=$R/etc/firstboot-stack/backup.conf
creds=$R/etc/firstboot-stack/backup-s3.curl
mkdir -p "$R/etc/firstboot-stack"
{
	echo "# Managed by firstboot (module backup): read by $SCRIPT."
	printf 'BACKUP_DIR=%q\nRETENTION_DAYS=%q\n' "$BACKUP_DIR" "$RETENTION_DAYS"
	if [ $s3 = 1 ]; then
		printf 'S3_BUCKET=%q\nS3_ENDPOINT=%q\nS3_REGION=%q\nS3_PREFIX=%q\nS3_CREDENTIALS=%q\n' \
			"$S3_BUCKET" "${S3_ENDPOINT:-https://s3.$S3_REGION.amazonaws.com}" "$S3_REGION" "$S3_PREFIX" \
			/etc/firstboot-stack/backup-s3.curl
	fi
} | put_file "$conf" 0600
if [ $s3 = 1 ]; then
	# Both keys are [A-Za-z0-9/+=] (checked above): nothing to escape in
	# curl's quoted string.
	printf '# Managed by firstboot (module backup).\nuser = "%s:%s"\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" |
		put_file "$creds" 0600
elif [ -e "$creds" ]; then
	rm -f "$creds"
	say "removed ${creds#"$R"} (no S3 upload configured)"
fi

# ---- the timer ----------------------------------------------------------

units_changed=0
put_file "$R/etc/systemd/system/firstboot-backup.service" 0644 <<EOF
# Managed by firstboot (module backup).
[Unit]
Description=Back up the PostgreSQL database (backup_db.sh)
Wants=network-online.target
After=network-online.target docker.service postgresql.service

[Service]
Type=oneshot
ExecStart=$SCRIPT
Nice=10
IOSchedulingClass=idle
UMask=0077
EOF
[ "$FILE_CHANGED" = 1 ] && units_changed=1
put_file "$R/etc/systemd/system/firstboot-backup.timer" 0644 <<EOF
# Managed by firstboot (module backup).
[Unit]
Description=Back up the PostgreSQL database on schedule

[Timer]
OnCalendar=$SCHEDULE
Persistent=true
RandomizedDelaySec=10min

[Install]
WantedBy=timers.target
EOF
[ "$FILE_CHANGED" = 1 ] && units_changed=1

if [ $units_changed = 1 ]; then
	systemctl daemon-reload || die 3 "systemctl daemon-reload failed"
fi
if ! systemctl is-enabled --quiet firstboot-backup.timer; then
	systemctl enable firstboot-backup.timer || die 3 "cannot enable firstboot-backup.timer"
fi
if ! systemctl is-active --quiet firstboot-backup.timer; then
	systemctl start firstboot-backup.timer || die 3 "firstboot-backup.timer does not start"
elif [ $units_changed = 1 ]; then
	systemctl restart firstboot-backup.timer || die 3 "firstboot-backup.timer does not restart"
fi

where="local only"
[ $s3 = 1 ] && where="and s3://$S3_BUCKET/$S3_PREFIX"
say "done: $SCRIPT on '$SCHEDULE' into $BACKUP_DIR ($RETENTION_DAYS days) $where"
