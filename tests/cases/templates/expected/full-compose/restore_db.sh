#!/bin/bash
# restore_db.sh FILE|s3://BUCKET/KEY --identity KEYFILE [--force]: restores
# one backup of backup_db.sh. The file is decrypted with `age -d -i
# KEYFILE` once to check it (a wrong key or a damaged file stops here,
# before the database is touched), then again into pg_restore
# --single-transaction (NAME-*.dump.age) or mysql (mysql-NAME-*.sql.age).
# A database that holds tables is not overwritten without --force (then
# pg_restore --clean --if-exists; MySQL's dump drops each table it
# creates). An s3:// file is downloaded with the module's S3 settings.
# Exit 0 restored, 1 refused or failed (the database untouched unless
# the restore itself failed, which PostgreSQL rolls back), 2 usage.
#
# Managed by firstboot: rendered by imagegen from templates/restore_db.sh.tmpl.
set -euo pipefail
umask 077

ROOT=${STACK_ROOT:-}
ROOT=${ROOT%/}
CONF=${BACKUP_CONF:-$ROOT/etc/firstboot-stack/backup.conf}
S3_ENDPOINT=""
S3_REGION=us-east-1
S3_CREDENTIALS=/etc/firstboot-stack/backup-s3.curl
MYSQL_DEFAULTS=/etc/firstboot-stack/backup-my.cnf
if [ -f "$CONF" ]; then
	# shellcheck disable=SC1090
	. "$CONF"
fi

die() {
	local code=$1
	shift
	echo "restore_db: $*" >&2
	exit "$code"
}
log() { echo "restore_db: $*"; }
usage() { die 2 "usage: restore_db.sh FILE|s3://BUCKET/KEY --identity KEYFILE [--force]"; }

src="" identity="" force=0
while [ $# -gt 0 ]; do
	case $1 in
	--identity | -i)
		[ $# -ge 2 ] || usage
		identity=$2
		shift 2
		;;
	--identity=*)
		identity=${1#--identity=}
		shift
		;;
	--force)
		force=1
		shift
		;;
	-h | --help) usage ;;
	-*) die 2 "unknown option $1" ;;
	*)
		[ -z "$src" ] || usage
		src=$1
		shift
		;;
	esac
done
if [ -z "$src" ] || [ -z "$identity" ]; then usage; fi
[ -r "$identity" ] || die 1 "cannot read the identity $identity"
command -v age >/dev/null || die 1 "age is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/restore_db.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 143' TERM INT HUP
# The identity is the private key: it is read where it is and never
# copied to a file. A regular file (also /dev/stdin redirected from one)
# is given to age as it is; a pipe (/dev/stdin through ssh) can be read
# only once and age reads the key twice, so its text is kept in memory
# and handed to age through a pipe each time.
id_text=""
if [ ! -f "$identity" ]; then
	id_text=$(cat -- "$identity") || die 1 "cannot read the identity $identity"
	[ -n "$id_text" ] || die 1 "the identity $identity is empty"
fi
# age_d ARG...: age -d with the identity.
age_d() {
	if [ -z "$id_text" ]; then
		age -d -i "$identity" "$@"
	else
		age -d -i <(printf '%s\n' "$id_text") "$@"
	fi
}

file=$src
if [[ $src == s3://* ]]; then
	rest=${src#s3://}
	bucket=${rest%%/*}
	key=${rest#*/}
	if [ -z "$bucket" ] || [ "$key" = "$rest" ] || [ -z "$key" ]; then die 2 "$src: give s3://BUCKET/KEY"; fi
	if ! [[ $key =~ ^[A-Za-z0-9._/-]+$ ]] || [[ $key =~ (^|/)\.\.(/|$) ]]; then
		die 2 "$src: the key may hold letters, digits, '.', '_', '-' and '/'"
	fi
	[ -n "$S3_ENDPOINT" ] || S3_ENDPOINT=https://s3.$S3_REGION.amazonaws.com
	[ -f "$ROOT$S3_CREDENTIALS" ] || die 1 "downloading from S3 needs $S3_CREDENTIALS (the backup module's S3 settings)"
	file=$work/${key##*/}
	curl -fsS --retry 3 --max-time 3600 --aws-sigv4 "aws:amz:$S3_REGION:s3" -K "$ROOT$S3_CREDENTIALS" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o "$file" "${S3_ENDPOINT%/}/$bucket/$key" || die 1 "downloading $src failed"
	log "downloaded $src"
fi
[ -f "$file" ] || die 1 "$file: no such file"
base=$(basename "$file")

if ! msg=$(age_d -o /dev/null "$file" 2>&1); then
	die 1 "$file cannot be decrypted with $identity (the wrong key, or a damaged file): $(head -n1 <<<"$msg"); nothing restored"
fi

# decrypt: the backup in plaintext on standard output, never on disk.
decrypt() { age_d "$file"; }

# run PIPELINE-RIGHT...: decrypt | COMMAND, each stage checked.
run() {
	local st
	set +e
	decrypt | "$@"
	st=("${PIPESTATUS[@]}")
	set -e
	[ "${st[0]}" = 0 ] || die 1 "age -d exited ${st[0]} while restoring $base"
	[ "${st[1]}" = 0 ] || die 1 "$1 exited ${st[1]} while restoring $base"
}

case $base in
mysql-*.sql.age)
	db=${base#mysql-}
	db=${db%-????????T??????Z.sql.age}
	if [ "$db" = "${base#mysql-}" ] || ! [[ $db =~ ^[A-Za-z0-9_$]{1,64}$ ]]; then
		die 1 "$base is not named mysql-DATABASE-YYYYmmddTHHMMSSZ.sql.age"
	fi
	[ -f "$ROOT$MYSQL_DEFAULTS" ] || die 1 "$MYSQL_DEFAULTS is missing (the backup module's MySQL settings)"
	my=(--defaults-extra-file="$ROOT$MYSQL_DEFAULTS")
	tables=$(mysql "${my[@]}" -NB -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$db'") ||
		die 1 "cannot ask MySQL whether $db holds tables"
	if [ "$tables" != 0 ] && [ $force = 0 ]; then
		die 1 "database $db holds $tables tables: not overwritten without --force"
	fi
	run mysql "${my[@]}"
	log "restored $db from $src"
	;;
*.dump.age)
	PG_DB=colony
	[ "$base" != "${base#"$PG_DB"-}" ] || die 1 "$base is not a backup of $PG_DB"
	COMPOSE_FILE=$ROOT/opt/stack/docker-compose.yml
	if docker compose version >/dev/null 2>&1; then
		compose=(docker compose)
	else
		compose=(docker-compose)
	fi
	psql_=("${compose[@]}" -f "$COMPOSE_FILE" exec -T postgres psql -U colony -d "$PG_DB")
	restore=("${compose[@]}" -f "$COMPOSE_FILE" exec -T postgres pg_restore -U colony -d "$PG_DB")
	tables=$("${psql_[@]}" -X -q -t -A -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'") ||
		die 1 "cannot ask PostgreSQL whether $PG_DB holds tables"
	restore+=(--single-transaction --exit-on-error)
	if [ "$tables" != 0 ]; then
		[ $force = 1 ] || die 1 "database $PG_DB holds $tables tables, sequences or views: not overwritten without --force"
		restore+=(--clean --if-exists)
	fi
	run "${restore[@]}"
	log "restored $PG_DB from $src"
	;;
*) die 1 "$base is not a backup_db.sh file (NAME-*.dump.age or mysql-NAME-*.sql.age)" ;;
esac
