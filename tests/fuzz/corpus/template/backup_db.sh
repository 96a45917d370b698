#!/bin/bash
{{! /usr/local/sbin/backup_db.sh, run by firstboot-backup.timer (the backup
    module). Settings the module writes: /etc/firstboot-stack/backup.conf
    (BACKUP_DIR, RETENTION_DAYS, S3_*). STACK_ROOT and BACKUP_CONF exist for
    tests and images: every path is under STACK_ROOT (default /). }}
# backup_db.sh: one PostgreSQL dump (pg_dump, custom format: restore it with
# pg_restore) into BACKUP_DIR (0700, files 0600), the dumps older than
# RETENTION_DAYS removed, and the new one uploaded to S3 when S3_BUCKET is
# set (curl --aws-sigv4 with the credentials from S3_CREDENTIALS, read with
# -K, never on the command line). Exit 0 done, 1 the dump failed, 2 the
# dump is kept but the upload failed.
#
# Managed by firstboot: rendered by imagegen from templates/backup_db.sh.tmpl.
set -euo pipefail
umask 077

ROOT=${STACK_ROOT:-}
ROOT=${ROOT%/}
CONF=${BACKUP_CONF:-$ROOT/etc/firstboot-stack/backup.conf}
BACKUP_DIR=/var/backups/firstboot-stack
RETENTION_DAYS=14
S3_BUCKET=""
S3_ENDPOINT=""
S3_REGION=us-east-1
S3_PREFIX=""
S3_CREDENTIALS=/etc/firstboot-stack/backup-s3.curl
if [ -f "$CONF" ]; then
	# shellcheck disable=SC1090
	. "$CONF"
fi
DB_NAME={{modules.postgres.db_name}}

log() { echo "backup_db: $*"; }
die() {
	local code=$1
	shift
	echo "backup_db: $*" >&2
	exit "$code"
}
[[ $RETENTION_DAYS =~ ^[1-9][0-9]*$ ]] || die 1 "RETENTION_DAYS in $CONF must be a number of days"

dir=$ROOT$BACKUP_DIR
mkdir -p "$dir"
chmod 0700 "$dir"
name=$DB_NAME-$(date -u +%Y%m%dT%H%M%SZ).dump
tmp=$(mktemp "$dir/.$name.XXXXXX")
trap 'rm -f "$tmp"' EXIT

{{#modules.postgres.data_dir}}
# PostgreSQL is the compose service: pg_dump runs in its container, over
# the local socket.
DB_USER={{modules.postgres.db_user}}
COMPOSE_FILE=$ROOT/opt/stack/docker-compose.yml
if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
else
	compose=(docker-compose)
fi
"${compose[@]}" -f "$COMPOSE_FILE" exec -T postgres pg_dump -U "$DB_USER" -d "$DB_NAME" -Fc >"$tmp" ||
	die 1 "pg_dump of $DB_NAME in the postgres container failed"
{{/modules.postgres.data_dir}}
{{^modules.postgres.data_dir}}
# PostgreSQL is Debian's: pg_dump as the postgres user (peer authentication).
runuser -u postgres -- pg_dump -d "$DB_NAME" -Fc >"$tmp" || die 1 "pg_dump of $DB_NAME failed"
{{/modules.postgres.data_dir}}
[ -s "$tmp" ] || die 1 "pg_dump of $DB_NAME wrote nothing"
mv -f "$tmp" "$dir/$name"
trap - EXIT
log "wrote $BACKUP_DIR/$name ($(stat -c %s "$dir/$name") bytes)"

# Retention: dumps of this database at least RETENTION_DAYS days old go.
while IFS= read -r old; do
	rm -f "$old"
	log "removed ${old#"$ROOT"} (older than $RETENTION_DAYS days)"
done < <(find "$dir" -maxdepth 1 -type f -name "$DB_NAME-*.dump" -mtime "+$((RETENTION_DAYS - 1))")

if [ -n "$S3_BUCKET" ]; then
	[ -f "$ROOT$S3_CREDENTIALS" ] || die 2 "S3_BUCKET is set but $S3_CREDENTIALS is missing"
	url=${S3_ENDPOINT%/}/$S3_BUCKET/$S3_PREFIX$name
	curl -fsS --retry 3 --max-time 3600 --aws-sigv4 "aws:amz:$S3_REGION:s3" -K "$ROOT$S3_CREDENTIALS" \
		-T "$dir/$name" -o /dev/null "$url" || die 2 "uploading $name to s3://$S3_BUCKET/$S3_PREFIX failed (kept locally)"
	log "uploaded $name to s3://$S3_BUCKET/$S3_PREFIX$name"
fi
