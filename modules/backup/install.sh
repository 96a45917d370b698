#!/bin/bash
# backup: schedules backup_db.sh (rendered by imagegen) with a systemd
# timer, and gives it its settings: /etc/firstboot-stack/backup.conf
# (0600), the age recipients every dump is encrypted to
# (backup-recipients.txt: public keys only, checked by age itself), with
# S3 /etc/firstboot-stack/backup-s3.curl (0600, curl's config syntax, read
# with `curl -K`, so the secret key is never on a command line), and with
# a MySQL database backup-my.cnf (0600, read by mysqldump
# --defaults-extra-file). Installs age. Run by firstboot under the module
# contract. Exit 1 bad input, 2 age could not be installed, 3 the script
# is missing or broken, a tool is missing, or systemd refused the units.
set -euo pipefail
umask 022

FB_PREFIX="backup: "
# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

SCHEDULE=${SCHEDULE:-"*-*-* 03:15:00"}
AGE_RECIPIENTS=${AGE_RECIPIENTS:-}
RETENTION_DAYS=${RETENTION_DAYS:-30}
KEEP_LOCAL=${KEEP_LOCAL:-true}
BACKUP_DIR=${BACKUP_DIR:-/var/backups/firstboot-stack}
SCRIPT=${SCRIPT:-/usr/local/sbin/backup_db.sh}
S3_BUCKET=${S3_BUCKET:-}
S3_ENDPOINT=${S3_ENDPOINT:-}
S3_REGION=${S3_REGION:-us-east-1}
S3_PREFIX=${S3_PREFIX:-}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-}
S3_SECRET_KEY=${S3_SECRET_KEY:-}
MYSQL_DATABASE=${MYSQL_DATABASE:-}
MYSQL_HOST=${MYSQL_HOST:-localhost}
MYSQL_PORT=${MYSQL_PORT:-3306}
MYSQL_USER=${MYSQL_USER:-}
MYSQL_PASSWORD=${MYSQL_PASSWORD:-}

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
if ! [[ $RETENTION_DAYS =~ ^[0-9]+$ ]] || [ "$RETENTION_DAYS" -lt 30 ] || [ "$RETENTION_DAYS" -gt 180 ]; then
	die 1 "retention_days must be 30-180"
fi
[[ $KEEP_LOCAL =~ ^(true|false)$ ]] || die 1 "keep_local must be true or false"

# The recipients, one per line: age's recipients file (age -R). The shapes
# age accepts (FiloSottile/age v1.1.1 cmd/age/parse.go parseRecipient:
# "age1" + bech32 for X25519, "ssh-" for agessh.ParseRecipient, which
# takes ssh-rsa and ssh-ed25519); age checks the rest itself below.
age_re='^(age1[02-9ac-hj-np-z]{58}|ssh-(ed25519|rsa) [A-Za-z0-9+/]+={0,2}( [A-Za-z0-9@._+:-]+)?)$'
recipients=""
n=0
while IFS= read -r r || [ -n "$r" ]; do
	r=${r//$'\r'/}
	r=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' <<<"$r")
	[ -n "$r" ] || continue
	n=$((n + 1))
	[[ $r == *"AGE-SECRET-KEY"* || $r == *"PRIVATE KEY"* ]] && die 1 "age_recipients: recipient $n is a private key; give the public key (age-keygen -y)"
	[[ $r =~ $age_re ]] || die 1 "age_recipients: recipient $n is not an age recipient (age1... or ssh-ed25519/ssh-rsa AAAA...)"
	recipients+="$r"$'\n'
done < <(tr ',' '\n' <<<"$AGE_RECIPIENTS")
[ -n "$recipients" ] || die 1 "age_recipients: give at least one public key (age-keygen -y KEYFILE prints it): backups are never written unencrypted"

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
[ $s3 = 1 ] || [ "$KEEP_LOCAL" = true ] || die 1 "keep_local: false needs an S3 bucket (the backups would be kept nowhere)"
[[ $MYSQL_DATABASE =~ ^([A-Za-z0-9_$]{1,64})?$ ]] || die 1 "mysql_database must be a database name"
[[ $MYSQL_HOST =~ ^[A-Za-z0-9.:-]+$ ]] || die 1 "mysql_host must be a host name or address"
if ! [[ $MYSQL_PORT =~ ^[0-9]+$ ]] || [ "$MYSQL_PORT" -lt 1 ] || [ "$MYSQL_PORT" -gt 65535 ]; then
	die 1 "mysql_port must be a port number"
fi
[[ $MYSQL_USER =~ ^[A-Za-z0-9_.-]{0,80}$ ]] || die 1 "mysql_user may hold letters, digits, '_', '.' and '-'"
[[ $MYSQL_PASSWORD =~ ^[A-Za-z0-9._~+/=@%^*!:,-]*$ ]] || die 1 "mysql_password may hold letters, digits and ._~+/=@%^*!:,- (it is written quoted in an option file)"

# ---- age ----------------------------------------------------------------

ensure_packages age
command -v age >/dev/null || die 3 "age is not installed"
if [ -n "$MYSQL_DATABASE" ] && ! command -v mysqldump >/dev/null; then
	die 3 "mysql_database is set but mysqldump is missing: set base's mysql_client (default-mysql-client or mariadb-client)"
fi

# ---- the script and its settings ----------------------------------------

[ -f "$R$SCRIPT" ] || die 3 "$SCRIPT is missing: render the site with imagegen (backup and postgres in site.yaml)"
bash -n "$R$SCRIPT" || die 3 "$SCRIPT is not a valid bash script"
[ -x "$R$SCRIPT" ] || set_mode "$R$SCRIPT" 0755

# backup_dir may be a link (to a volume mounted in the root, say): it is
# resolved inside the root (in_root), and the folder it leads to is the
# one made and given 0700. The script follows links as the host does, so
# a link whose host reading leads elsewhere (an absolute link out of the
# root given with --root) is refused.
in_root "$R$BACKUP_DIR" || die 3 "$BACKUP_DIR: cannot find it inside the root"
bdir=$IN_ROOT
host=$(realpath -m -- "$R$BACKUP_DIR") || die 3 "$BACKUP_DIR: cannot resolve it"
inside=$(realpath -m -- "$bdir") || die 3 "$BACKUP_DIR: cannot resolve it"
[ "$host" = "$inside" ] || die 3 "$BACKUP_DIR: a link on the way leads out of the root: refused"
if [ ! -d "$bdir" ]; then
	make_dir "$bdir" 0700
	say "created $BACKUP_DIR"
fi
[ "$(stat -c '%a' -- "$bdir")" = 700 ] || set_mode "$bdir" 0700

conf=$R/etc/firstboot-stack/backup.conf
creds=$R/etc/firstboot-stack/backup-s3.curl
mycnf=$R/etc/firstboot-stack/backup-my.cnf
rcpt=$R/etc/firstboot-stack/backup-recipients.txt
make_dir "$R/etc/firstboot-stack"
# age checks each recipient (with -r, where a key it cannot use is an
# error: in a recipients file it would skip an RSA key under 2048 bits
# with a warning), with nothing to encrypt: a key it refuses is exit 1
# here, not a failed backup at night.
n=0
while IFS= read -r r; do
	n=$((n + 1))
	if ! msg=$(age -r "$r" -o /dev/null </dev/null 2>&1); then
		die 1 "age_recipients: age refuses recipient $n: $(head -n1 <<<"$msg" | cut -c1-300)"
	fi
done <<<"${recipients%$'\n'}"
printf '%s' "$recipients" | put_file "$rcpt" 0644
{
	echo "# Managed by firstboot (module backup): read by $SCRIPT."
	printf 'BACKUP_DIR=%q\nRETENTION_DAYS=%q\nKEEP_LOCAL=%q\nAGE_RECIPIENTS_FILE=%q\n' "$BACKUP_DIR" \
		"$RETENTION_DAYS" "$KEEP_LOCAL" /etc/firstboot-stack/backup-recipients.txt
	if [ -n "$MYSQL_DATABASE" ]; then
		printf 'MYSQL_DATABASE=%q\nMYSQL_DEFAULTS=%q\n' "$MYSQL_DATABASE" /etc/firstboot-stack/backup-my.cnf
	fi
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
elif root_entry "$creds" && { [ -e "$ROOT_ENTRY" ] || [ -L "$ROOT_ENTRY" ]; }; then
	remove_file "$creds"
	say "removed ${creds#"$R"} (no S3 upload configured)"
fi
if [ -n "$MYSQL_DATABASE" ]; then
	# An option file mysqldump reads first (--defaults-extra-file): the
	# password never on a command line. Values are double-quoted; the
	# password's characters need no escape there (checked above).
	{
		printf '# Managed by firstboot (module backup).\n[client]\nhost="%s"\nport=%s\n' "$MYSQL_HOST" "$MYSQL_PORT"
		[ -n "$MYSQL_USER" ] && printf 'user="%s"\n' "$MYSQL_USER"
		[ -n "$MYSQL_PASSWORD" ] && printf 'password="%s"\n' "$MYSQL_PASSWORD"
		true
	} | put_file "$mycnf" 0600
elif root_entry "$mycnf" && { [ -e "$ROOT_ENTRY" ] || [ -L "$ROOT_ENTRY" ]; }; then
	remove_file "$mycnf"
	say "removed ${mycnf#"$R"} (no MySQL database)"
fi

# ---- the timer ----------------------------------------------------------

# Everything above is read by the script at each run: a change to it needs
# nothing restarted. units_changed: daemon-reload; timer_changed: the timer
# also restarted (its next elapse computed from the new OnCalendar). A
# changed service (another script path) needs no more: a oneshot reads its
# unit at each start.
units_changed=0 timer_changed=0
put_file "$R/etc/systemd/system/firstboot-backup.service" 0644 <<EOF
# Managed by firstboot (module backup).
[Unit]
Description=Back up the databases, encrypted (backup_db.sh)
Wants=network-online.target
After=network-online.target docker.service postgresql.service mariadb.service mysql.service

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
Description=Back up the databases on schedule

[Timer]
OnCalendar=$SCHEDULE
Persistent=true
RandomizedDelaySec=10min

[Install]
WantedBy=timers.target
EOF
if [ "$FILE_CHANGED" = 1 ]; then
	units_changed=1
	timer_changed=1
fi

if [ $units_changed = 1 ]; then
	systemctl daemon-reload || die 3 "systemctl daemon-reload failed"
fi
if ! systemctl is-enabled --quiet firstboot-backup.timer; then
	systemctl enable firstboot-backup.timer || die 3 "cannot enable firstboot-backup.timer"
fi
if ! systemctl is-active --quiet firstboot-backup.timer; then
	systemctl start firstboot-backup.timer || die 3 "firstboot-backup.timer does not start"
elif [ $timer_changed = 1 ]; then
	systemctl restart firstboot-backup.timer || die 3 "firstboot-backup.timer does not restart"
fi

where="local only"
[ $s3 = 1 ] && where="and s3://$S3_BUCKET/$S3_PREFIX"
[ "$KEEP_LOCAL" = true ] || where="s3://$S3_BUCKET/$S3_PREFIX only"
say "done: $SCRIPT on '$SCHEDULE' into $BACKUP_DIR ($RETENTION_DAYS days) $where, encrypted to $n recipient(s)"
