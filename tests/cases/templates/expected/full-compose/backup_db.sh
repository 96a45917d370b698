#!/bin/bash
# backup_db.sh: each database dumped and encrypted on the way, never
# written in plaintext: pg_dump (custom format) and, with MYSQL_DATABASE,
# mysqldump --single-transaction, piped through `age -R` to the public keys
# in AGE_RECIPIENTS_FILE into a temporary file renamed into place (files
# NAME-YYYYmmddTHHMMSSZ.dump.age and .sql.age, UTC; decrypt them with
# restore_db.sh --identity on the operator's side). Kept in BACKUP_DIR
# (0700, files 0600) unless KEEP_LOCAL=false, uploaded to S3 when S3_BUCKET
# is set (curl --aws-sigv4, credentials from S3_CREDENTIALS read with -K,
# never on the command line), and backups older than RETENTION_DAYS
# removed locally (by file time) and in the bucket (by the time in the
# name). Exit 0 done, 1 a dump failed (no file is left of it), 2 an upload
# or the bucket's retention failed (the local files are kept).
#
# Managed by firstboot: rendered by imagegen from templates/backup_db.sh.tmpl.
set -euo pipefail
umask 077

ROOT=${STACK_ROOT:-}
ROOT=${ROOT%/}
CONF=${BACKUP_CONF:-$ROOT/etc/firstboot-stack/backup.conf}
BACKUP_DIR=/var/backups/firstboot-stack
RETENTION_DAYS=30
KEEP_LOCAL=true
AGE_RECIPIENTS_FILE=/etc/firstboot-stack/backup-recipients.txt
S3_BUCKET=""
S3_ENDPOINT=""
S3_REGION=us-east-1
S3_PREFIX=""
S3_CREDENTIALS=/etc/firstboot-stack/backup-s3.curl
MYSQL_DATABASE=""
MYSQL_DEFAULTS=/etc/firstboot-stack/backup-my.cnf
if [ -f "$CONF" ]; then
	# shellcheck disable=SC1090
	. "$CONF"
fi

log() { echo "backup_db: $*"; }
die() {
	local code=$1
	shift
	echo "backup_db: $*" >&2
	exit "$code"
}
[[ $RETENTION_DAYS =~ ^[1-9][0-9]*$ ]] || die 1 "RETENTION_DAYS in $CONF must be a number of days"
[[ $KEEP_LOCAL =~ ^(true|false)$ ]] || die 1 "KEEP_LOCAL in $CONF must be true or false"
[ "$KEEP_LOCAL" = true ] || [ -n "$S3_BUCKET" ] || die 1 "KEEP_LOCAL=false without S3_BUCKET would keep the backups nowhere"
rcpt=$ROOT$AGE_RECIPIENTS_FILE
[ -s "$rcpt" ] || die 1 "no age recipients in $AGE_RECIPIENTS_FILE: a dump is never written unencrypted"
command -v age >/dev/null || die 1 "age is not installed: a dump is never written unencrypted"

dir=$ROOT$BACKUP_DIR
mkdir -p "$dir"
chmod 0700 "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)

# The temporary files go on any exit, a signal (systemd's stop) included.
tmps=()
cleanup() { [ ${#tmps[@]} -eq 0 ] || rm -f "${tmps[@]}"; }
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# encrypt_to NAME COMMAND...: COMMAND's output encrypted into
# $dir/NAME, through a temporary file in the same folder; each stage of
# the pipe checked. Returns 1 with nothing left behind when either fails.
encrypt_to() {
	local name=$1 tmp st
	shift
	tmp=$(mktemp "$dir/.$name.XXXXXX")
	tmps+=("$tmp")
	set +e
	"$@" | age -R "$rcpt" -o "$tmp"
	st=("${PIPESTATUS[@]}")
	set -e
	if [ "${st[0]}" != 0 ] || [ "${st[1]}" != 0 ]; then
		rm -f "$tmp"
		[ "${st[0]}" = 0 ] || echo "backup_db: $1 exited ${st[0]}" >&2
		[ "${st[1]}" = 0 ] || echo "backup_db: age exited ${st[1]}" >&2
		return 1
	fi
	sync "$tmp"
	mv -f "$tmp" "$dir/$name"
}

# s3 ARGS...: curl against the bucket with SigV4 and the credentials file.
# S3 wants x-amz-content-sha256 on every SigV4 request; curl 7.88 (Debian
# 12) does not send it, and signs it when given.
s3() {
	curl -fsS --retry 3 --max-time 3600 --aws-sigv4 "aws:amz:$S3_REGION:s3" -K "$ROOT$S3_CREDENTIALS" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
if [ -n "$S3_BUCKET" ]; then
	[ -f "$ROOT$S3_CREDENTIALS" ] || die 2 "S3_BUCKET is set but $S3_CREDENTIALS is missing"
	bucket_url=${S3_ENDPOINT%/}/$S3_BUCKET
fi

# s3_retention PATTERN-PREFIX SUFFIX: the objects PREFIX<stamp>SUFFIX under
# S3_PREFIX whose stamp is RETENTION_DAYS days old or more are deleted
# (ListObjectsV2, at most 100 pages of 1000).
s3_retention() {
	local base=$1 suffix=$2 cutoff token="" page key keys more when args
	cutoff=$(date -u -d "$RETENTION_DAYS days ago" +%Y%m%dT%H%M%SZ)
	for page in $(seq 1 100); do
		args=(--get --data-urlencode list-type=2 --data-urlencode "prefix=$S3_PREFIX$base")
		[ -z "$token" ] || args+=(--data-urlencode "continuation-token=$token")
		keys=$(s3 "${args[@]}" "$bucket_url/") || return 1
		while IFS= read -r key; do
			when=${key#"$S3_PREFIX$base"}
			if [ "$when" = "$key" ] || [ "${when%"$suffix"}" = "$when" ]; then
				continue
			fi
			when=${when%"$suffix"}
			[[ $when =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || continue
			[[ $when < $cutoff ]] || [[ $when == "$cutoff" ]] || continue
			s3 -X DELETE -o /dev/null "$bucket_url/$key" || return 1
			log "removed s3://$S3_BUCKET/$key (older than $RETENTION_DAYS days)"
		done < <(grep -o '<Key>[^<]*</Key>' <<<"$keys" | sed -e 's/^<Key>//' -e 's/<\/Key>$//')
		more=$(grep -o '<IsTruncated>true</IsTruncated>' <<<"$keys" || true)
		[ -n "$more" ] || return 0
		token=$(grep -o '<NextContinuationToken>[^<]*</NextContinuationToken>' <<<"$keys" | sed -e 's/<[^>]*>//g')
		[ -n "$token" ] || return 1
		: "$page"
	done
	return 1
}

failed_dump=0
failed_upload=0
# one BASE SUFFIX WHAT COMMAND...: a backup of one database: encrypted,
# uploaded, kept or not, and the old ones of BASE*SUFFIX removed.
one() {
	local base=$1 suffix=$2 what=$3 name old when
	shift 3
	name=$base$stamp$suffix
	if ! encrypt_to "$name" "$@"; then
		echo "backup_db: $what failed: no backup written" >&2
		failed_dump=1
		return 0
	fi
	log "wrote $BACKUP_DIR/$name ($(stat -c %s "$dir/$name") bytes, encrypted)"
	if [ -n "$S3_BUCKET" ]; then
		if s3 -T "$dir/$name" -o /dev/null "$bucket_url/$S3_PREFIX$name"; then
			log "uploaded $name to s3://$S3_BUCKET/$S3_PREFIX$name"
			if [ "$KEEP_LOCAL" = false ]; then
				rm -f "$dir/$name"
			fi
			# Only after a new copy is there: uploads failing day after
			# day must not empty the bucket.
			if ! s3_retention "$base" "$suffix"; then
				echo "backup_db: applying retention in s3://$S3_BUCKET/$S3_PREFIX failed" >&2
				failed_upload=1
			fi
		else
			echo "backup_db: uploading $name to s3://$S3_BUCKET/$S3_PREFIX failed (kept locally)" >&2
			failed_upload=1
		fi
	fi
	# Local retention: the backups of this database at least RETENTION_DAYS
	# days old (by file time) go.
	# Only BASE<stamp>SUFFIX: the base "app-" must not take "app-old-...".
	while IFS= read -r old; do
		when=${old##*/}
		when=${when#"$base"}
		when=${when%"$suffix"}
		[[ $when =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || continue
		rm -f "$old"
		log "removed ${old#"$ROOT"} (older than $RETENTION_DAYS days)"
	done < <(find "$dir" -maxdepth 1 -type f -name "$base*$suffix" -mtime "+$((RETENTION_DAYS - 1))")
}

n=0
PG_DB=colony
# PostgreSQL is the compose service: pg_dump runs in its container, over
# the local socket.
COMPOSE_FILE=$ROOT/opt/stack/docker-compose.yml
if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
else
	compose=(docker-compose)
fi
one "$PG_DB-" .dump.age "pg_dump of $PG_DB in the postgres container" \
	"${compose[@]}" -f "$COMPOSE_FILE" exec -T postgres pg_dump -U colony -d "$PG_DB" -Fc
n=$((n + 1))
if [ -n "$MYSQL_DATABASE" ]; then
	# mysqldump reads its option file first (--defaults-extra-file must be
	# the first option); --single-transaction: a consistent InnoDB snapshot
	# without locking the tables.
	[ -f "$ROOT$MYSQL_DEFAULTS" ] || die 1 "MYSQL_DATABASE is set but $MYSQL_DEFAULTS is missing"
	one "mysql-$MYSQL_DATABASE-" .sql.age "mysqldump of $MYSQL_DATABASE" \
		mysqldump --defaults-extra-file="$ROOT$MYSQL_DEFAULTS" --single-transaction --no-tablespaces --hex-blob \
		--databases "$MYSQL_DATABASE"
	n=$((n + 1))
fi
[ "$n" -gt 0 ] || die 1 "no database to back up (neither the postgres module nor MYSQL_DATABASE)"
[ $failed_dump = 0 ] || exit 1
[ $failed_upload = 0 ] || exit 2
log "done"
