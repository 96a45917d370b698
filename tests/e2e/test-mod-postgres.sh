#!/bin/bash
# The postgres module through the real agent on a temporary root. compose
# mode prepares the data directory. native mode configures a REAL
# PostgreSQL cluster the test starts as the postgres user on a loopback
# port, the way Debian lays one out (/etc/postgresql/15/main under the
# root, conf.d, pg_hba.conf): systemctl is a recorder that runs pg_ctl,
# psql and pg_isready are the real ones. The test then logs in with the
# password and proves a wrong one is refused, and looks for the password
# in every command line, log and readable file.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"

t_check "the postgres manifest validates" "$FIRSTBOOT" validate "$TOP/modules/postgres/manifest.yml"

PW=Pw$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
PW2=Second$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

t_case "compose mode: the data directory 0700, owned by the container's uid; nothing installed or started"
R=$T/pc
mod_root "$R"
mod_recorders "$T/pc.rec" "${MOD_COMMANDS[@]}"
if mod_run "$R" postgres db_password="$PW" && [ "$(stat -c '%a %u:%g' "$R/var/lib/firstboot-stack/postgres")" = "700 999:999" ] &&
	[ ! -s "$MOD_REC/calls.txt" ] && mod_no_secrets "$R" "$PW"; then t_pass; else t_fail "$(mod_calls "" | tr '\n' ';')"; fi

t_case "compose mode: a second run changes nothing; a wrong owner is fixed"
before=$(tree_snapshot "$R")
if mod_run "$R" postgres db_password="$PW" && [ "$(tree_snapshot "$R")" = "$before" ] &&
	! mod_lastlog "$R" postgres | grep -q 'owner 999' && chmod 0755 "$R/var/lib/firstboot-stack/postgres" &&
	mod_run "$R" postgres db_password="$PW" data_uid=70 && [ "$(stat -c '%a %u:%g' "$R/var/lib/firstboot-stack/postgres")" = "700 70:70" ]; then
	t_pass
else t_fail "owner"; fi

t_case "a password shorter than 12 is refused by the agent; a bad db_name by the module itself"
if ! mod_run "$R" postgres db_password=short && grep -q 'db_password' "$MOD_ERR" && ! grep -q short "$MOD_ERR" &&
	! mod_exec "$R" postgres mode=native db_name=Colony db_user=colony db_password="$PW" && grep -q 'db_name must be' "$MOD_ERR" &&
	[ ! -s "$MOD_REC/calls.txt" ]; then t_pass; else t_fail "$(cat "$MOD_ERR")"; fi

# ---- native mode against a real server --------------------------------

PGBIN=/usr/lib/postgresql/15/bin
PORT=$(free_port)
R=$T/pn
mod_root "$R"
mod_recorders "$T/pn.rec" "${MOD_COMMANDS[@]}"
chmod 0711 "$T"
PGD=$T/pgdata SOCK=$T/pgsock PGLOG=$T/pglog CONF=$R/etc/postgresql/15/main
mkdir -p "$PGD" "$SOCK" "$PGLOG" "$CONF/conf.d"
chown postgres: "$PGD" "$SOCK" "$PGLOG"
chmod 0700 "$PGD"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGD" -U postgres -A peer --auth-host=scram-sha-256 >"$T/initdb.log" 2>&1
# What Debian's package leaves: the cluster's configuration in /etc, with
# include_dir at the end, and the postgres user.
cat >"$CONF/postgresql.conf" <<EOF
hba_file = '$CONF/pg_hba.conf'
ident_file = '$CONF/pg_ident.conf'
listen_addresses = 'localhost'
port = $PORT
unix_socket_directories = '$SOCK'
log_line_prefix = '%m [%p] %q%u@%d '
include_dir = 'conf.d'
EOF
mv "$PGD/pg_hba.conf" "$PGD/pg_ident.conf" "$CONF/"
chown -R postgres: "$CONF"
echo "postgres:x:$(id -u postgres):$(id -g postgres):PostgreSQL administrator:/var/lib/postgresql:/bin/bash" >>"$R/etc/passwd"
echo "postgres:x:$(id -g postgres):" >>"$R/etc/group"

pgctl() {
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGD" -o "-c config_file=$CONF/postgresql.conf" -l "$PGLOG/server.log" -w -t 20 "$@"
}
trap 'runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGD" -m immediate stop >/dev/null 2>&1; _cleanup' EXIT
pgctl start >"$T/pgstart.log" 2>&1 || {
	echo "not ok - start PostgreSQL"
	cat "$T/initdb.log" "$T/pgstart.log" "$PGLOG/server.log"
	exit 1
}

# systemctl drives that cluster; runuser reaches it on its socket.
mod_ctl systemctl <<EOF
unit=\${*: -1}
[ "\$unit" = postgresql@15-main ] || exit 0
case \$1 in
is-active) /usr/sbin/runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGD" status >/dev/null ;;
start | restart | reload)
	/usr/sbin/runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGD" -o "-c config_file=$CONF/postgresql.conf" -l "$PGLOG/server.log" -w -t 20 "\$1"
	;;
esac
EOF
mod_ctl runuser <<EOF
PGHOST="$SOCK" PATH="$PGBIN:/usr/sbin:/usr/bin:/bin" exec /usr/sbin/runuser "\$@"
EOF
mod_passthrough psql
mod_passthrough pg_isready
PATH="$PGBIN:$PATH"

login() { # PASSWORD [USER [DB]]
	PGPASSWORD=$1 PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -w -h 127.0.0.1 -p "$PORT" -U "${2:-colony}" -d "${3:-colony}" -tAc 'SELECT current_user' 2>"$T/login.err"
}
show() { runuser -u postgres -- "$PGBIN/psql" -X -h "$SOCK" -p "$PORT" -d postgres -tAc "SHOW $1"; }

t_case "native: installed, configured, restarted, waited for; the role and database created from stdin"
if mod_run "$R" postgres mode=native db_password="$PW" port="$PORT" &&
	mod_order '^apt-get .*install --no-install-recommends postgresql$' '^systemctl restart postgresql@15-main' \
		'^pg_isready -q -h 127.0.0.1 -p '"$PORT" '^psql .* -U colony -d colony -c SELECT 1' \
		'^runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p '"$PORT"' -d postgres -f -$' &&
	[ "$(login "$PW")" = colony ]; then t_pass; else t_fail "$(tail -n 5 "$(mod_log "$R" postgres)")"; fi

t_case "native: a wrong password and the superuser over TCP are refused; scram and slow-query logging are on"
if ! login "wrong-$PW" >/dev/null && grep -q 'password authentication failed' "$T/login.err" &&
	! login "$PW" postgres postgres >/dev/null && grep -q 'no pg_hba.conf entry' "$T/login.err" &&
	! login "$PW" colony postgres >/dev/null &&
	[ "$(show password_encryption)" = scram-sha-256 ] && [ "$(show log_min_duration_statement)" = 500ms ] &&
	[ "$(stat -c '%a %U' "$CONF/pg_hba.conf")" = "640 postgres" ] &&
	[ "$(runuser -u postgres -- "$PGBIN/psql" -X -h "$SOCK" -p "$PORT" -d postgres -tAc "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'colony'")" = colony ]; then
	t_pass
else t_fail "$(cat "$T/login.err")"; fi

t_case "native: the password is in no command line, stdin, log line, server log or readable file"
if mod_no_secrets "$R" "$PW" && ! grep -rqF "$PW" "$MOD_REC/stdin" "$PGLOG" && grep -q 'getenv pw DB_PASSWORD' "$MOD_REC"/stdin/*; then
	t_pass
else t_fail "leaked"; fi

t_case "native: a second run changes nothing (no install, no restart, no superuser SQL)"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" postgres mode=native db_password="$PW" port="$PORT" && mod_not_called '^apt-get' &&
	mod_not_called '^systemctl (start|restart|reload|enable) ' && mod_not_called '^runuser' &&
	[ "$(tree_snapshot "$R")" = "$before" ] && [ "$(login "$PW")" = colony ]; then t_pass; else
	t_fail "$(mod_calls "" | tr '\n' ';')"
fi

# as_user PASSWORD SQL: SQL as colony on its database over TCP.
as_user() { PGPASSWORD=$1 PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -w -h 127.0.0.1 -p "$PORT" -U colony -d colony -tAc "$2" 2>"$T/login.err"; }
pm_pid() { head -n 1 "$PGD/postmaster.pid"; }

t_case "native: ALTER ROLE refused (a read-only server): exit 3, no ready marker, the old password still works"
runuser -u postgres -- "$PGBIN/psql" -X -q -h "$SOCK" -p "$PORT" -d postgres \
	-c "ALTER SYSTEM SET default_transaction_read_only = on" -c "SELECT pg_reload_conf()" >/dev/null
# pg_reload_conf() only signals the postmaster: new sessions are read-only
# once it has read the file again.
ro=0
wait_eq 10 on show default_transaction_read_only && ro=1
mod_reset_calls
if [ "$ro" = 1 ] && ! mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" && [ "$(mod_exit "$R" postgres)" = 3 ] &&
	[ ! -e "$R/var/lib/firstboot/ready" ] && mod_lastlog "$R" postgres | grep -q 'creating the role colony' &&
	[ "$(login "$PW")" = colony ] && ! login "$PW2" >/dev/null && mod_no_secrets "$R" "$PW" "$PW2"; then t_pass; else
	t_fail "read-only seen: $ro; exit $(mod_exit "$R" postgres): $(mod_lastlog "$R" postgres | tail -n 3)"
fi
runuser -u postgres -- "$PGBIN/psql" -X -q -h "$SOCK" -p "$PORT" -d postgres \
	-c "ALTER SYSTEM RESET default_transaction_read_only" -c "SELECT pg_reload_conf()" >/dev/null
rw=0
wait_eq 10 off show default_transaction_read_only && rw=1

t_case "native: a new password is set with ALTER ROLE; the old one stops working; no restart, same server, data kept"
as_user "$PW" "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')" >/dev/null
pid=$(pm_pid)
mod_reset_calls
if [ "$rw" = 1 ] && mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" && mod_called '^runuser' &&
	mod_not_called '^systemctl (restart|reload|start|stop)' && mod_not_called '(initdb|createcluster|dropcluster)' &&
	[ "$(login "$PW2")" = colony ] && ! login "$PW" >/dev/null && [ "$(pm_pid)" = "$pid" ] &&
	[ "$(as_user "$PW2" "SELECT v FROM kept")" = before ] && [ -f "$R/var/lib/firstboot/ready" ] &&
	mod_no_secrets "$R" "$PW" "$PW2" && ! grep -rqF "$PW2" "$PGLOG"; then t_pass; else t_fail "$(mod_calls "" | tr '\n' ';')"; fi

t_case "native: postgres_db_schema lets db_user into the database postgres, its tables in a schema of its own"
mod_reset_calls
in_pg() { # SQL: as colony in the database postgres
	PGPASSWORD=$PW2 PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -w -q -h 127.0.0.1 -p "$PORT" -U colony -d postgres -tAc "$1" 2>"$T/login.err"
}
# pg_refused: colony cannot log in to the database postgres.
pg_refused() { ! in_pg 'SELECT 1' >/dev/null; }
as_su() { runuser -u postgres -- "$PGBIN/psql" -X -h "$SOCK" -p "$PORT" -d postgres -tAc "$1"; }
if mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" postgres_db_schema=true &&
	mod_called '^systemctl reload postgresql@15-main' && mod_not_called '^systemctl restart' &&
	wait_eq 10 1 in_pg 'SELECT 1' && [ "$(in_pg 'CREATE TABLE prod_colonies (id text); SELECT current_schema()')" = colony ] &&
	[ "$(as_su "SELECT schemaname || ' ' || tableowner FROM pg_tables WHERE tablename = 'prod_colonies'")" = "colony colony" ] &&
	[ "$(login "$PW2")" = colony ] && mod_no_secrets "$R" "$PW2" && ! grep -rqF "$PW2" "$PGLOG"; then
	t_pass
else t_fail "$(cat "$T/login.err"; tail -n 3 "$(mod_log "$R" postgres)")"; fi

t_case "native: postgres_db_schema again changes nothing; turned off, the login goes and the schema stays"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" postgres_db_schema=true &&
	mod_not_called '^runuser' && mod_not_called '^systemctl (start|restart|reload) ' &&
	[ "$(tree_snapshot "$R")" = "$before" ] &&
	mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" && wait_for 10 pg_refused &&
	grep -q 'no pg_hba.conf entry' "$T/login.err" && [ "$(login "$PW2")" = colony ] &&
	[ "$(as_su "SELECT count(*) FROM pg_tables WHERE schemaname = 'colony'")" = 1 ]; then t_pass; else
	t_fail "$(mod_calls "" | tr '\n' ';')"
fi

t_case "bad input: postgres_db_schema that is not a boolean"
if ! mod_exec "$R" postgres MODE=native DB_PASSWORD="$PW2" POSTGRES_DB_SCHEMA=yes && grep -q 'postgres_db_schema must be true or false' "$MOD_ERR"; then
	t_pass
else t_fail "$(cat "$MOD_ERR")"; fi

t_case "native: a new slow-query threshold is a reload, not a restart"
mod_reset_calls
if mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" slow_query_ms=250 &&
	mod_called '^systemctl reload postgresql@15-main' && mod_not_called '^systemctl restart' &&
	wait_eq 10 250ms show log_min_duration_statement; then t_pass; else t_fail "$(mod_calls "" | tr '\n' ';')"; fi

t_case "native: a link out of the root (to this test's folder, relative) where an older module wrote pg_hba.conf's draft (.pg_hba.firstboot): not written through"
printf 'keep\n' >"$T/outside-hba"
ln -sfn ../../../../../outside-hba "$CONF/.pg_hba.firstboot"
mod_reset_calls
if mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" slow_query_ms=250 &&
	[ "$(cat "$T/outside-hba")" = keep ] && grep -q '^local   all       postgres         peer$' "$CONF/pg_hba.conf"; then t_pass; else
	t_fail "exit $(mod_exit "$R" postgres): out of the root: $(head -n 2 "$T/outside-hba" | tr '\n' ';')"
fi
rm -f "$CONF/.pg_hba.firstboot"

t_case "native: an address the server cannot listen on is exit 3; the previous configuration comes back"
if ! mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" slow_query_ms=250 listen=192.0.2.1 &&
	[ "$(mod_exit "$R" postgres)" = 3 ] && [ "$(mod_attempts "$R" postgres)" = 1 ] &&
	grep -qx "listen_addresses = '127.0.0.1'" "$CONF/conf.d/50-firstboot.conf" &&
	wait_for 10 "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && [ "$(login "$PW2")" = colony ]; then t_pass; else
	t_fail "exit $(mod_exit "$R" postgres): $(tail -n 3 "$(mod_log "$R" postgres)")"
fi

t_case "native: a server that never answers is exit 3 after wait_seconds"
mod_fail pg_isready 2
if ! mod_run "$R" postgres mode=native db_password="$PW2" port="$PORT" slow_query_ms=250 wait_seconds=2 &&
	[ "$(mod_exit "$R" postgres)" = 3 ] && grep -q 'does not accept connections' "$(mod_log "$R" postgres)"; then t_pass; else
	t_fail "exit $(mod_exit "$R" postgres)"
fi

t_case "native: apt-get failing is exit 2, retried; no cluster after the install is exit 3"
R2=$T/pn2
mod_root "$R2"
mod_recorders "$T/pn2.rec" "${MOD_COMMANDS[@]}"
mod_fail apt-get 100 install 3
if ! mod_run "$R2" postgres mode=native db_password="$PW" && [ "$(mod_exit "$R2" postgres)" = 2 ] &&
	[ "$(mod_attempts "$R2" postgres)" = 3 ] && ! mod_run "$R2" postgres mode=native db_password="$PW" &&
	[ "$(mod_exit "$R2" postgres)" = 3 ] && grep -q 'no cluster' "$(mod_log "$R2" postgres)"; then t_pass; else
	t_fail "exit $(mod_exit "$R2" postgres)"
fi

t_case "compose mode: the data directory a link out of the root (to this test's folder, relative): exit 3, what it points to keeps its owner and mode"
RL=$T/pcl
mod_root "$RL"
mod_recorders "$T/pcl.rec" "${MOD_COMMANDS[@]}"
mkdir -p "$T/outside-data" "$RL/var/lib/firstboot-stack"
chmod 0755 "$T/outside-data"
before=$(stat -c '%a %u:%g' "$T/outside-data")
ln -s ../../../../outside-data "$RL/var/lib/firstboot-stack/postgres"
if ! mod_run "$RL" postgres db_password="$PW" && [ "$(mod_exit "$RL" postgres)" = 3 ] &&
	mod_lastlog "$RL" postgres | grep -q '/var/lib/firstboot-stack/postgres is a symbolic link: refused' &&
	[ "$(stat -c '%a %u:%g' "$T/outside-data")" = "$before" ] && [ -L "$RL/var/lib/firstboot-stack/postgres" ]; then t_pass; else
	t_fail "exit $(mod_exit "$RL" postgres): $(mod_lastlog "$RL" postgres | tail -n 1); out of the root: $(stat -c '%a %u:%g' "$T/outside-data")"
fi
