#!/bin/bash
# postgres: PostgreSQL as the stack's compose service (the data directory
# on the host; compose-up starts the container) or Debian's postgresql
# (configured, the database and its owner created, waited for). Run by
# firstboot under the module contract: inputs in the environment, every
# file under $FIRSTBOOT_ROOT, commands from PATH, services through
# systemctl. Exit 1 bad input, 2 a package install failed (retried), 3
# the configuration was refused or the server does not come up. The
# password never appears on a command line, in a log line or in a file:
# psql reads it from its environment (\getenv) and the SQL from stdin.
set -euo pipefail
umask 022

# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

MODE=${MODE:-compose}
DB_NAME=${DB_NAME:-colony}
DB_USER=${DB_USER:-colony}
DB_PASSWORD=${DB_PASSWORD:-}
PORT=${PORT:-5432}
LISTEN=${LISTEN:-127.0.0.1}
ALLOWED_NETWORKS=${ALLOWED_NETWORKS:-127.0.0.1/32 ::1/128}
SLOW_QUERY_MS=${SLOW_QUERY_MS:-500}
DATA_DIR=${DATA_DIR:-/var/lib/firstboot-stack/postgres}
DATA_UID=${DATA_UID:-999}
WAIT_SECONDS=${WAIT_SECONDS:-60}
POSTGRES_DB_SCHEMA=${POSTGRES_DB_SCHEMA:-false}
export DB_NAME DB_USER DB_PASSWORD POSTGRES_DB_SCHEMA

# ---- inputs -------------------------------------------------------------

case $MODE in compose | native) ;; *) die 1 "mode must be compose or native" ;; esac
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die 1 "db_name must be lowercase letters, digits and _ (at most 63)"
[[ $DB_USER =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die 1 "db_user must be lowercase letters, digits and _ (at most 63)"
case $DB_USER in postgres | pg_*) die 1 "db_user cannot be $DB_USER" ;; esac
[ ${#DB_PASSWORD} -ge 12 ] || die 1 "db_password must be at least 12 characters"
[[ $DB_PASSWORD != *[[:cntrl:]]* ]] || die 1 "db_password cannot contain control characters"
if ! [[ $PORT =~ ^[1-9][0-9]*$ ]] || [ "$PORT" -gt 65535 ]; then die 1 "port must be a port number"; fi
[[ $LISTEN =~ ^(\*|[0-9A-Za-z.:-]+)(,\ *[0-9A-Za-z.:-]+)*$ ]] || die 1 "listen must be addresses separated by commas, or *"
if ! [[ $SLOW_QUERY_MS =~ ^(-1|[0-9]+)$ ]]; then die 1 "slow_query_ms must be -1 or more"; fi
if ! [[ $DATA_DIR =~ ^(/[A-Za-z0-9._-]+)+$ ]] || [[ $DATA_DIR == */..* ]]; then die 1 "data_dir must be an absolute path"; fi
[[ $DATA_UID =~ ^[1-9][0-9]*$ ]] || die 1 "data_uid must be a number from 1"
[[ $WAIT_SECONDS =~ ^[1-9][0-9]*$ ]] || die 1 "wait_seconds must be a number from 1"
case $POSTGRES_DB_SCHEMA in true | false) ;; *) die 1 "postgres_db_schema must be true or false" ;; esac
networks=()
for n in ${ALLOWED_NETWORKS//,/ }; do
	[[ $n =~ ^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:]*)/[0-9]{1,3}$ ]] ||
		die 1 "allowed_networks: '$n' is not a CIDR like 10.0.0.0/8"
	networks+=("$n")
done

# ---- compose ------------------------------------------------------------
# The container keeps its data in DATA_DIR; the image's entrypoint fixes
# the ownership of what is inside, the top is ours to get right.

if [ "$MODE" = compose ]; then
	# Inside the root (root_entry): a link there is refused, never
	# followed to give its target (out of the root, maybe) away.
	dir=$R$DATA_DIR
	root_entry "$dir" || die 3 "$DATA_DIR cannot be resolved inside the root"
	[ ! -L "$ROOT_ENTRY" ] || die 3 "$DATA_DIR is a symbolic link: refused (give the real folder as data_dir)"
	if [ ! -d "$ROOT_ENTRY" ]; then
		make_dir "$dir" 0700
		say "created $DATA_DIR"
	fi
	if [ "$(stat -c '%a %u:%g' -- "$ROOT_ENTRY")" != "700 $DATA_UID:$DATA_UID" ]; then
		chown -h "$DATA_UID:$DATA_UID" -- "$ROOT_ENTRY" || die 3 "$DATA_DIR: cannot give it owner $DATA_UID"
		set_mode "$dir" 0700
		say "$DATA_DIR: owner $DATA_UID, mode 0700"
	fi
	say "done: $DATA_DIR ready; compose-up starts the postgres service"
	exit 0
fi

# ---- native: the package and the cluster --------------------------------

ensure_packages postgresql
conf=""
for c in "$R"/etc/postgresql/*/main/postgresql.conf; do
	[ -f "$c" ] || continue
	v=$(basename "$(dirname "$(dirname "$c")")")
	[[ $v =~ ^[0-9]+$ ]] || continue
	if [ -z "$conf" ] || [ "$v" -gt "$ver" ]; then
		conf=$c
		ver=$v
	fi
done
[ -n "$conf" ] || die 3 "no cluster: $R/etc/postgresql/*/main/postgresql.conf is missing after installing postgresql"
# The cluster's folder found inside the root (in_root): what is read or
# written there never follows a link out of the root.
in_root "$(dirname "$conf")" || die 3 "${conf#"$R"}: its folder cannot be resolved inside the root"
confdir=$IN_ROOT
root_file "$confdir/postgresql.conf" || die 3 "${conf#"$R"} is not a regular file inside the root"
conf=$ROOT_FILE
unit=postgresql@$ver-main
pg_uid=$(passwd_field postgres 3)
pg_gid=$(passwd_field postgres 4)
[ -n "$pg_uid" ] || die 3 "there is no postgres user after installing postgresql"

# Debian's postgresql.conf ends with include_dir = 'conf.d'; ours is read
# last and wins.
if ! grep -qE "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf\.d'" "$conf"; then
	printf "\ninclude_dir = 'conf.d'\n" >>"$conf"
	say "added include_dir = 'conf.d' to ${conf#"$R"}"
fi
make_dir "$confdir/conf.d"

settings=$IN_ROOT/50-firstboot.conf
old_settings=""
if root_file "$settings" 2>/dev/null; then old_settings=$(cat -- "$ROOT_FILE"); fi
put_file "$settings" 0644 "$pg_uid:$pg_gid" <<EOT
# Managed by firstboot (module postgres).
listen_addresses = '$LISTEN'
port = $PORT
password_encryption = 'scram-sha-256'
log_min_duration_statement = $SLOW_QUERY_MS
EOT
settings_changed=$FILE_CHANGED
restart=0
if [ "$settings_changed" = 1 ] &&
	[ "$(grep -E '^(listen_addresses|port) ' <<<"$old_settings" || true)" != "$(root_file "$settings" && grep -E '^(listen_addresses|port) ' "$ROOT_FILE")" ]; then
	restart=1
fi

# Only the postgres superuser (peer, on the socket) and db_user on its own
# database (scram-sha-256) get in; with postgres_db_schema, db_user on the
# database postgres too.
hba=$confdir/pg_hba.conf
old_hba=""
if root_file "$hba" 2>/dev/null; then old_hba=$(cat -- "$ROOT_FILE"); fi
dbs=$DB_NAME
[ "$POSTGRES_DB_SCHEMA" = false ] || dbs=$DB_NAME,postgres
# Straight to put_file (no temporary file of ours in the cluster's folder).
hba_lines() {
	echo "# Managed by firstboot (module postgres)."
	echo "# TYPE  DATABASE  USER  ADDRESS  METHOD"
	echo "local   all       postgres         peer"
	echo "local   $dbs  $DB_USER         scram-sha-256"
	for n in "${networks[@]}"; do
		echo "host    $dbs  $DB_USER  $n  scram-sha-256"
	done
}
put_file "$hba" 0640 "$pg_uid:$pg_gid" < <(hba_lines)
hba_changed=$FILE_CHANGED

# restore: puts the previous configuration back after a refused one.
restore() {
	if [ -n "$old_settings" ]; then
		put_file "$settings" 0644 "$pg_uid:$pg_gid" <<<"$old_settings"
	else
		remove_file "$settings"
	fi
	if [ -n "$old_hba" ]; then put_file "$hba" 0640 "$pg_uid:$pg_gid" <<<"$old_hba"; fi
	systemctl restart "$unit" || true
}

if ! systemctl is-enabled --quiet postgresql; then
	systemctl enable postgresql || die 3 "cannot enable postgresql"
fi
if ! systemctl is-active --quiet "$unit"; then
	systemctl start "$unit" || {
		restore
		die 3 "$unit does not start with this configuration; the previous one is back"
	}
elif [ $restart = 1 ]; then
	systemctl restart "$unit" || {
		restore
		die 3 "$unit does not restart with this configuration; the previous one is back"
	}
elif [ "$settings_changed" = 1 ] || [ "$hba_changed" = 1 ]; then
	systemctl reload "$unit" || die 3 "$unit: reload failed"
fi

# ---- ready --------------------------------------------------------------

host=${LISTEN%%,*}
case $host in '*' | 0.0.0.0) host=127.0.0.1 ;; '::') host=::1 ;; esac
say "waiting for PostgreSQL on $host:$PORT (at most $WAIT_SECONDS s)"
ok=0
for ((i = 0; i < WAIT_SECONDS; i++)); do
	if pg_isready -q -h "$host" -p "$PORT" -t 1; then
		ok=1
		break
	fi
	sleep 1
done
[ $ok = 1 ] || die 3 "PostgreSQL does not accept connections on $host:$PORT after $WAIT_SECONDS s"

# ---- the database and its owner -----------------------------------------

# psql_as_user DB SQL: SQL's result as db_user over TCP, with its password.
psql_as_user() {
	PGPASSWORD=$DB_PASSWORD PGCONNECT_TIMEOUT=5 psql -X -q -t -A -w -h "$host" -p "$PORT" \
		-U "$DB_USER" -d "$1" -c "$2" 2>/dev/null
}
# ready: db_user logs in to its database and, with postgres_db_schema, to
# the database postgres, where its own schema comes first.
ready() {
	[ "$(psql_as_user "$DB_NAME" 'SELECT 1')" = 1 ] || return 1
	[ "$POSTGRES_DB_SCHEMA" = false ] ||
		[ "$(psql_as_user postgres 'SELECT current_schema() = current_user')" = t ]
}
what="$DB_NAME"
[ "$POSTGRES_DB_SCHEMA" = true ] && what="$DB_NAME and its schema in the database postgres"
if ready; then
	say "$DB_USER can log in to $what already"
else
	# The statements must not reach the server's log with the password:
	# no statement logging in this session, none for a failed one either.
	runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres -f - <<'SQL' ||
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
\getenv pw DB_PASSWORD
\getenv dbuser DB_USER
\getenv dbname DB_NAME
\getenv schema POSTGRES_DB_SCHEMA
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'dbuser') AS create_role \gset
\if :create_role
CREATE ROLE :"dbuser" LOGIN PASSWORD :'pw';
\else
ALTER ROLE :"dbuser" WITH LOGIN PASSWORD :'pw';
\endif
\unset pw
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname') AS create_db \gset
\if :create_db
CREATE DATABASE :"dbname" OWNER :"dbuser";
\endif
ALTER DATABASE :"dbname" OWNER TO :"dbuser";
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
\c :"dbname"
ALTER SCHEMA public OWNER TO :"dbuser";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
\if :schema
\c postgres
CREATE SCHEMA IF NOT EXISTS :"dbuser" AUTHORIZATION :"dbuser";
ALTER SCHEMA :"dbuser" OWNER TO :"dbuser";
\endif
SQL
		die 3 "creating the role $DB_USER and the database $DB_NAME failed"
	# A pg_hba.conf just reloaded takes the server a moment.
	for ((i = 0; i < 5; i++)); do
		ready && break
		sleep 1
	done
	ready || die 3 "$DB_USER still cannot log in to $what over $host:$PORT (allowed_networks?)"
	say "$DB_USER owns $what and can log in"
fi
say "done: PostgreSQL $ver on $LISTEN:$PORT, database $DB_NAME"
