#!/bin/bash
# backup_db.sh and restore_db.sh as imagegen renders them, for real: a
# private PostgreSQL 15 on loopback (its own socket and port, run as the
# postgres user), real age, real curl against an S3 simulator on loopback
# (tests/e2e/peers/s3.py). The round trip (backup, the file holds no row
# text, drop the table, restore with the identity, rows equal), restore's
# refusals (a table there without --force, a wrong identity, a damaged
# file: the database untouched), retention by file time to the day
# locally and by the name's time in the bucket (ListObjectsV2 over two
# pages), the failures (pg_dump or age failing: exit 1 and no file; the
# upload failing: exit 2, the file kept), keep_local=false, a restore from
# s3://. MySQL: a private MariaDB from Debian (mariadbd on a loopback
# port, its own datadir, a user with a password over TCP) through the
# option file the backup module writes: the same round trip with the real
# mysqldump and mysql; then recorders for the exact command line and a
# failing mysqldump.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
	echo "not ok - age is installed (packaging/deps.sh)"
	exit 1
fi
PGBIN=/usr/lib/postgresql/15/bin

# ---- a private PostgreSQL -----------------------------------------------

PORT=$(free_port)
chmod 0711 "$T"
PGD=$T/pgdata SOCK=$T/pgsock PGLOG=$T/pglog
mkdir -p "$PGD" "$SOCK" "$PGLOG"
chown postgres: "$PGD" "$SOCK" "$PGLOG"
chmod 0700 "$PGD"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGD" -U postgres -A peer >"$T/initdb.log" 2>&1
trap 'runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGD" -m immediate stop >/dev/null 2>&1; _cleanup' EXIT
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGD" -l "$PGLOG/server.log" -w -t 20 \
	-o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$SOCK" start >"$T/pgstart.log" 2>&1 || {
	echo "not ok - start PostgreSQL"
	cat "$T/initdb.log" "$T/pgstart.log" "$PGLOG/server.log"
	exit 1
}
# pg_dump, pg_restore and psql run as the postgres user (runuser keeps
# the environment): the private cluster through its socket.
export PGHOST=$SOCK PGPORT=$PORT
sql() { runuser -u postgres -- psql -X -q -t -A -v ON_ERROR_STOP=1 -d "${DB:-colony}" -c "$1"; }
runuser -u postgres -- createdb colony
sql "CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL);
INSERT INTO items SELECT i, 'ROWTEXT-secret-' || i || '-' || md5(i::text) FROM generate_series(1, 500) i;"
rows() { sql "SELECT id, note FROM items ORDER BY id" | sha256sum; }
want=$(rows)

# ---- keys, the rendered scripts, their settings --------------------------

age-keygen -o "$T/id.txt" 2>/dev/null
age-keygen -o "$T/wrong.txt" 2>/dev/null
RCPT=$(age-keygen -y "$T/id.txt")
R=$T/root
mkdir -p "$R/usr/local/sbin" "$R/etc/firstboot-stack"
modb_render backup_db.sh.tmpl "$TOP/tests/cases/templates/native-systemd.json" "$R/usr/local/sbin/backup_db.sh" 0755
modb_render restore_db.sh.tmpl "$TOP/tests/cases/templates/native-systemd.json" "$R/usr/local/sbin/restore_db.sh" 0755
echo "$RCPT" >"$R/etc/firstboot-stack/backup-recipients.txt"
D=$R/var/backups/firstboot-stack
setconf() {
	printf 'BACKUP_DIR=/var/backups/firstboot-stack\nRETENTION_DAYS=30\nAGE_RECIPIENTS_FILE=/etc/firstboot-stack/backup-recipients.txt\n%s' \
		"${1:-}" >"$R/etc/firstboot-stack/backup.conf"
}
setconf
backup() { env STACK_ROOT="$R" "$@" bash "$R/usr/local/sbin/backup_db.sh" >"$T/b.out" 2>"$T/b.err"; }
restore() { env STACK_ROOT="$R" bash "$R/usr/local/sbin/restore_db.sh" "$@" >"$T/r.out" 2>"$T/r.err"; }
dumps() { find "$D" -maxdepth 1 -name 'colony-*.dump.age' | sort; }
# listing: everything in the backup folder, hidden files included.
listing() { ls -A "$D" 2>/dev/null; }

t_case "backup: one file colony-<UTC time>.dump.age, 0600 in a 0700 folder, age's format, no row text and no PGDMP in it"
before=$(date -u +%Y%m%dT%H%M%SZ)
if backup; then
	f=$(dumps | tail -n1)
	stamp=$(basename "$f" .dump.age)
	stamp=${stamp#colony-}
fi
after=$(date -u +%Y%m%dT%H%M%SZ)
if [ -n "${f:-}" ] && [ "$(dumps | wc -l)" = 1 ] && [[ $stamp =~ ^[0-9]{8}T[0-9]{6}Z$ ]] &&
	! [[ $stamp < $before ]] && ! [[ $stamp > $after ]] &&
	[ "$(stat -c %a "$f")" = 600 ] && [ "$(stat -c %a "$D")" = 700 ] &&
	[ "$(head -n1 "$f")" = "age-encryption.org/v1" ] && ! grep -aq ROWTEXT "$f" && ! grep -aq PGDMP "$f" &&
	[ "$(listing | wc -l)" = 1 ] && age -d -i "$T/id.txt" "$f" | head -c 5 | grep -q PGDMP; then t_pass; else
	t_fail "$(cat "$T/b.err") $(listing)"
fi

t_case "restore: the table dropped, restored with the identity, the rows equal"
sql "DROP TABLE items"
if restore "$f" --identity "$T/id.txt" && [ "$(rows)" = "$want" ] && grep -q 'restored colony' "$T/r.out"; then t_pass; else
	t_fail "$(cat "$T/r.err")"
fi

t_case "restore refuses a database that holds a table without --force; with --force it replaces it"
sql "DELETE FROM items WHERE id > 250"
changed=$(rows)
restore "$f" --identity "$T/id.txt"
rc=$?
if [ $rc = 1 ] && grep -q 'not overwritten without --force' "$T/r.err" && [ "$(rows)" = "$changed" ] &&
	restore "$f" --identity "$T/id.txt" --force && [ "$(rows)" = "$want" ]; then t_pass; else
	t_fail "exit $rc: $(cat "$T/r.err")"
fi

t_case "restore with the wrong identity fails loudly and leaves the database as it was"
sql "DROP TABLE items"
restore "$f" --identity "$T/wrong.txt"
rc=$?
if [ $rc = 1 ] && grep -q 'cannot be decrypted' "$T/r.err" && grep -q 'nothing restored' "$T/r.err" &&
	[ "$(sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ]; then t_pass; else
	t_fail "exit $rc: $(cat "$T/r.err")"
fi

t_case "restore of a damaged file (one byte of the payload changed) fails before touching the database"
cp "$f" "$T/damaged-colony-20200101T000000Z.dump.age"
size=$(stat -c %s "$f")
printf '\x00' | dd of="$T/damaged-colony-20200101T000000Z.dump.age" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
cmp -s "$f" "$T/damaged-colony-20200101T000000Z.dump.age" && printf '\x01' |
	dd of="$T/damaged-colony-20200101T000000Z.dump.age" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
restore "$T/damaged-colony-20200101T000000Z.dump.age" --identity "$T/id.txt"
rc=$?
if [ $rc = 1 ] && grep -q 'cannot be decrypted' "$T/r.err" &&
	[ "$(sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ] &&
	restore "$f" --identity "$T/id.txt" && [ "$(rows)" = "$want" ]; then t_pass; else
	t_fail "exit $rc: $(cat "$T/r.err")"
fi

t_case "restore: usage errors are exit 2, a missing identity or file exit 1"
restore "$f"
rc1=$?
restore "$f" --identity
rc2=$?
restore "$f" --identity "$T/nope.txt"
rc3=$?
restore "$T/nope.dump.age" --identity "$T/id.txt"
rc4=$?
restore "$f" --identity "$T/id.txt" --frobnicate
rc5=$?
if [ "$rc1 $rc2 $rc3 $rc4 $rc5" = "2 2 1 1 2" ]; then t_pass; else t_fail "exits $rc1 $rc2 $rc3 $rc4 $rc5"; fi

t_case "the identity through a pipe (ssh server restore_db.sh ... --identity /dev/stdin < key)"
sql "DROP TABLE items"
if env STACK_ROOT="$R" bash "$R/usr/local/sbin/restore_db.sh" "$f" --identity /dev/stdin <"$T/id.txt" >"$T/r.out" 2>"$T/r.err" &&
	[ "$(rows)" = "$want" ]; then t_pass; else t_fail "$(cat "$T/r.err")"; fi

t_case "the identity is never copied: age reads the file given, or a pipe of a piped key; no key file in TMPDIR"
# An age in front of the real one: records each -i and looks for the key
# in restore_db's TMPDIR while restore_db runs.
mkdir -p "$T/ageshim" "$T/tmpd"
cat >"$T/ageshim/age" <<EOS
#!/bin/bash
prev=""
for a; do
	if [ "\$prev" = -i ]; then
		if [ -f "\$a" ] && [ "\$a" != "$T/id.txt" ]; then echo "file \$a" >>"$T/age-ids"; else echo "\${a%/*}" >>"$T/age-ids"; fi
	fi
	prev=\$a
done
grep -rlF AGE-SECRET-KEY "$T/tmpd" >>"$T/age-copies" 2>/dev/null
exec "$(command -v age)" "\$@"
EOS
chmod 0755 "$T/ageshim/age"
: >"$T/age-ids"
: >"$T/age-copies"
sql "DROP TABLE items"
ok=1
env STACK_ROOT="$R" TMPDIR="$T/tmpd" PATH="$T/ageshim:$PATH" bash "$R/usr/local/sbin/restore_db.sh" "$f" --identity "$T/id.txt" \
	>"$T/r.out" 2>"$T/r.err" && [ "$(rows)" = "$want" ] || ok=0
[ "$(sort -u "$T/age-ids")" = "$T" ] || ok=0
: >"$T/age-ids"
sql "DROP TABLE items"
key=$(<"$T/id.txt")
printf '%s\n' "$key" | env STACK_ROOT="$R" TMPDIR="$T/tmpd" PATH="$T/ageshim:$PATH" bash "$R/usr/local/sbin/restore_db.sh" "$f" \
	--identity /dev/stdin >"$T/r.out" 2>"$T/r.err" && [ "$(rows)" = "$want" ] || ok=0
[ "$(sort -u "$T/age-ids")" = /dev/fd ] || ok=0
if [ $ok = 1 ] && [ "$(wc -l <"$T/age-ids")" = 2 ] && [ ! -s "$T/age-copies" ]; then t_pass; else
	t_fail "ids: $(sort -u "$T/age-ids" | tr '\n' ' ') copies: $(cat "$T/age-copies") $(cat "$T/r.err")"
fi

t_case "an empty piped identity: exit 1 before age runs"
if ! printf '' | env STACK_ROOT="$R" bash "$R/usr/local/sbin/restore_db.sh" "$f" --identity /dev/stdin >"$T/r.out" 2>"$T/r.err" &&
	grep -q 'the identity /dev/stdin is empty' "$T/r.err" && [ "$(rows)" = "$want" ]; then t_pass; else t_fail "$(cat "$T/r.err")"; fi

t_case "retention: local backups 30 days old or more are removed, younger ones and other files kept"
mk() { touch -d "$2" "$D/$1"; }
mk colony-20200101T000000Z.dump.age '30 days ago'
mk colony-20200102T000000Z.dump.age '45 days ago'
mk colony-20200103T000000Z.dump.age '29 days ago 23 hours ago'
mk colony-20200104T000000Z.dump.age '29 days ago'
mk other-20200101T000000Z.dump.age '90 days ago'
mk colony-old-20200101T000000Z.dump.age '90 days ago'
mk notes.txt '90 days ago'
sleep 1.1 # a new backup name (they are per second)
if backup && [ ! -e "$D/colony-20200101T000000Z.dump.age" ] && [ ! -e "$D/colony-20200102T000000Z.dump.age" ] &&
	[ -e "$D/colony-20200103T000000Z.dump.age" ] && [ -e "$D/colony-20200104T000000Z.dump.age" ] &&
	[ -e "$D/other-20200101T000000Z.dump.age" ] && [ -e "$D/colony-old-20200101T000000Z.dump.age" ] && [ -e "$D/notes.txt" ] &&
	[ "$(dumps | grep -vc colony-old)" = 4 ] &&
	[ "$(grep -c '^backup_db: removed' "$T/b.out")" = 2 ]; then t_pass; else t_fail "$(cat "$T/b.out" "$T/b.err") $(listing)"; fi
rm -f "$D"/colony-2020* "$D/other-20200101T000000Z.dump.age" "$D/colony-old-20200101T000000Z.dump.age" "$D/notes.txt"

t_case "a failing pg_dump (the server unreachable) is exit 1 and leaves no file, not even a temporary one"
before=$(listing)
sleep 1.1
backup PGPORT=1
rc=$?
if [ $rc = 1 ] && [ "$(listing)" = "$before" ] && grep -q 'pg_dump of colony failed: no backup written' "$T/b.err" &&
	grep -q 'pg_dump exited\|runuser exited' "$T/b.err"; then t_pass; else t_fail "exit $rc: $(cat "$T/b.err")"; fi

t_case "a failing age (a recipient it refuses) is exit 1 and leaves no file; no recipients at all is exit 1 before dumping"
cp "$R/etc/firstboot-stack/backup-recipients.txt" "$T/rcpt.keep"
echo "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq" >"$R/etc/firstboot-stack/backup-recipients.txt"
sleep 1.1
backup
rc1=$?
: >"$R/etc/firstboot-stack/backup-recipients.txt"
backup
rc2=$?
grep -q 'never written unencrypted' "$T/b.err" && m2=1 || m2=0
cp "$T/rcpt.keep" "$R/etc/firstboot-stack/backup-recipients.txt"
if [ $rc1 = 1 ] && [ $rc2 = 1 ] && [ "$m2" = 1 ] && [ "$(listing)" = "$before" ]; then t_pass; else t_fail "exits $rc1 $rc2: $(listing)"; fi

t_case "a backup killed mid-dump (SIGTERM, as systemctl stop) leaves no temporary file"
mkdir -p "$T/slow"
printf '#!/bin/bash\nexec sleep 30\n' >"$T/slow/age"
chmod 0755 "$T/slow/age"
# Its own process group, all of it signalled, as systemd stops a unit.
env STACK_ROOT="$R" PATH="$T/slow:$PATH" setsid bash "$R/usr/local/sbin/backup_db.sh" >/dev/null 2>&1 &
bp=$!
wait_for 10 sh -c "ls -A '$D' | grep -q '^\.colony-'"
saw=$?
kill -TERM -- "-$bp" 2>/dev/null
wait "$bp"
rc=$?
if [ $saw = 0 ] && [ $rc != 0 ] && [ "$(listing)" = "$before" ]; then t_pass; else t_fail "saw $saw exit $rc: $(listing)"; fi

# ---- S3 -------------------------------------------------------------------

S3D=$T/s3
mkdir -p "$S3D/colony-backups/colony-1"
python3 "$PEERS/s3.py" "$S3D" "$T/s3.port" 2 >"$T/s3.log" 2>&1 &
_pids+=($!)
wait_for 10 test -s "$T/s3.port" || {
	echo "not ok - start the S3 simulator"
	cat "$T/s3.log"
	exit 1
}
S3PORT=$(cat "$T/s3.port")
printf 'user = "AKIDEXAMPLE0123:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY="\n' >"$R/etc/firstboot-stack/backup-s3.curl"
S3CONF="S3_BUCKET=colony-backups
S3_ENDPOINT=http://127.0.0.1:$S3PORT
S3_REGION=eu-central-1
S3_PREFIX=colony-1/
S3_CREDENTIALS=/etc/firstboot-stack/backup-s3.curl
"
setconf "$S3CONF"
B=$S3D/colony-backups/colony-1
old=$(date -u -d '31 days ago' +%Y%m%dT%H%M%SZ)
young=$(date -u -d '29 days ago' +%Y%m%dT%H%M%SZ)
for k in "colony-20200101T000000Z.dump.age" "colony-$old.dump.age" "colony-$young.dump.age" "other-20200101T000000Z.dump.age" \
	"colony-notes.txt" "colony-20200101T000000Z.dump.age.bak"; do
	echo x >"$B/$k"
done

t_case "S3: the encrypted file uploaded (SigV4), bucket retention by the name's time over two list pages"
sleep 1.1
if backup && up=$(find "$B" -name 'colony-2*Z.dump.age' -newer "$B/colony-notes.txt") && [ "$(echo "$up" | wc -l)" = 1 ] &&
	cmp -s "$up" "$D/$(basename "$up")" && [ "$(head -n1 "$up")" = age-encryption.org/v1 ] &&
	[ ! -e "$B/colony-20200101T000000Z.dump.age" ] && [ ! -e "$B/colony-$old.dump.age" ] && [ -e "$B/colony-$young.dump.age" ] &&
	[ -e "$B/other-20200101T000000Z.dump.age" ] && [ -e "$B/colony-notes.txt" ] && [ -e "$B/colony-20200101T000000Z.dump.age.bak" ] &&
	[ "$(grep -c '^LIST ' "$S3D/requests.log")" -ge 2 ] && grep -q 'continuation-token=' "$S3D/requests.log" &&
	! grep -q 'wJalrXUtnFEMI' "$T/b.out" "$T/b.err"; then t_pass; else
	t_fail "$(cat "$T/b.err") $(ls "$B") $(cat "$S3D/requests.log")"
fi

t_case "restore from s3://: downloaded, decrypted, restored"
sql "DROP TABLE items"
if restore "s3://colony-backups/colony-1/$(basename "$up")" --identity "$T/id.txt" && [ "$(rows)" = "$want" ] &&
	grep -q downloaded "$T/r.out"; then t_pass; else t_fail "$(cat "$T/r.err")"; fi

t_case "an upload that fails is exit 2, the local file kept, nothing removed in the bucket; a failing bucket listing too"
n=$(dumps | wc -l)
echo PUT >"$S3D/FAIL"
lists=$(grep -c '^LIST' "$S3D/requests.log")
sleep 1.1
backup
rc1=$?
# No retention in the bucket after a failed upload (it would only remove).
lists1=$(grep -c '^LIST' "$S3D/requests.log")
cp "$T/b.err" "$T/b.err.1"
k1=$(dumps | wc -l)
echo LIST >"$S3D/FAIL"
sleep 1.1
backup
rc2=$?
rm -f "$S3D/FAIL"
grep -q 'uploading .* failed (kept locally)' "$T/b.err.1" 2>/dev/null && m1=1 || m1=0
if [ "$m1" = 1 ] && [ $rc1 = 2 ] && [ "$k1" = $((n + 1)) ] && [ "$lists1" = "$lists" ] && [ $rc2 = 2 ] && grep -q 'retention in s3://colony-backups/colony-1/ failed' "$T/b.err" &&
	[ "$(dumps | wc -l)" = $((n + 2)) ]; then t_pass; else t_fail "exits $rc1 $rc2, m1 $m1, k1 $k1 n $n, lists $lists $lists1, $(tail -n 3 "$T/b.err")"; fi

t_case "keep_local=false: uploaded, no local copy"
setconf "${S3CONF}KEEP_LOCAL=false
"
n=$(dumps | wc -l)
nb=$(find "$B" -name 'colony-2*Z.dump.age' | wc -l)
sleep 1.1
if backup && [ "$(dumps | wc -l)" = "$n" ] && [ "$(find "$B" -name 'colony-2*Z.dump.age' | wc -l)" = $((nb + 1)) ] &&
	[ "$(listing | grep -c '^\.')" = 0 ]; then t_pass; else t_fail "$(cat "$T/b.err")"; fi

# ---- MariaDB for real -----------------------------------------------------

if ! [ -x /usr/sbin/mariadbd ] || ! command -v mariadb-install-db >/dev/null || ! command -v mysqldump >/dev/null; then
	echo "not ok - mariadbd, mariadb-install-db and mysqldump are installed (packaging/deps.sh)"
	exit 1
fi
MPORT=$(free_port)
MY=$T/my
mkdir -p "$MY/data" "$MY/run"
mariadb-install-db --no-defaults --datadir="$MY/data" --user=root --auth-root-authentication-method=socket \
	--skip-test-db >"$MY/install.log" 2>&1
/usr/sbin/mariadbd --no-defaults --datadir="$MY/data" --user=root --socket="$MY/run/sock" --port="$MPORT" \
	--bind-address=127.0.0.1 --pid-file="$MY/run/pid" --log-error="$MY/err.log" --skip-log-bin \
	--innodb-buffer-pool-size=16M >/dev/null 2>&1 &
_pids+=($!)
myroot() { mysql --no-defaults -S "$MY/run/sock" -uroot -N -B -e "$1"; }
wait_for 30 myroot 'SELECT 1' || {
	echo "not ok - start MariaDB"
	cat "$MY/install.log" "$MY/err.log"
	exit 1
}
myroot "CREATE DATABASE shop; CREATE USER 'bk'@'127.0.0.1' IDENTIFIED BY 'pa%ss:w0rd';
GRANT ALL ON shop.* TO 'bk'@'127.0.0.1';
CREATE TABLE shop.orders (id int PRIMARY KEY, note text NOT NULL) ENGINE=InnoDB;
INSERT INTO shop.orders SELECT seq, CONCAT('MYROWTEXT-', seq, '-', MD5(seq)) FROM seq_1_to_300;"
myrows() { myroot "SELECT id, note FROM shop.orders ORDER BY id" | sha256sum; }
mywant=$(myrows)
# The option file as the module writes it.
M=$T/mroot
mod_root "$M"
mod_recorders "$T/mroot.rec" "${MOD_COMMANDS[@]}"
mkdir -p "$M/usr/local/sbin"
cp "$R/usr/local/sbin/backup_db.sh" "$M/usr/local/sbin/"
mod_exec "$M" backup AGE_RECIPIENTS="$RCPT" MYSQL_DATABASE=shop MYSQL_HOST=127.0.0.1 MYSQL_PORT="$MPORT" \
	MYSQL_USER=bk MYSQL_PASSWORD='pa%ss:w0rd' || {
	echo "not ok - the backup module writes the MySQL settings"
	cat "$MOD_ERR"
	exit 1
}
cp "$M/etc/firstboot-stack/backup-my.cnf" "$R/etc/firstboot-stack/backup-my.cnf"
setconf "MYSQL_DATABASE=shop
MYSQL_DEFAULTS=/etc/firstboot-stack/backup-my.cnf
"
mydumps() { find "$D" -maxdepth 1 -name 'mysql-shop-*.sql.age' | sort; }

t_case "MariaDB: mysqldump through the module's option file, encrypted: no row text in the file, the PostgreSQL backup too"
np=$(dumps | wc -l)
sleep 1.1
if backup && m=$(mydumps | tail -n1) && [ "$(mydumps | wc -l)" = 1 ] && [ "$(dumps | wc -l)" = $((np + 1)) ] &&
	[ "$(head -n1 "$m")" = age-encryption.org/v1 ] && ! grep -aq MYROWTEXT "$m" && [ "$(stat -c %a "$m")" = 600 ] &&
	age -d -i "$T/id.txt" "$m" | grep -q 'CREATE TABLE `orders`'; then t_pass; else t_fail "$(cat "$T/b.err")"; fi

t_case "MariaDB restore: refused while shop holds a table, the table dropped, restored, rows equal; a wrong identity leaves it alone"
restore "$m" --identity "$T/id.txt"
rc1=$?
myroot "DROP TABLE shop.orders"
restore "$m" --identity "$T/wrong.txt"
rc2=$?
t2=$(myroot "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'shop'")
if [ $rc1 = 1 ] && [ $rc2 = 1 ] && [ "$t2" = 0 ] && restore "$m" --identity "$T/id.txt" && [ "$(myrows)" = "$mywant" ]; then
	t_pass
else t_fail "exits $rc1 $rc2 tables $t2: $(cat "$T/r.err")"; fi

t_case "MariaDB: a wrong password (mysqldump refused) is exit 1 and leaves no file of it"
cp "$R/etc/firstboot-stack/backup-my.cnf" "$T/my.cnf.keep"
sed -i 's/^password=.*/password="wrong"/' "$R/etc/firstboot-stack/backup-my.cnf"
nm=$(mydumps | wc -l)
sleep 1.1
backup
rc=$?
cp "$T/my.cnf.keep" "$R/etc/firstboot-stack/backup-my.cnf"
if [ $rc = 1 ] && [ "$(mydumps | wc -l)" = "$nm" ] && grep -q 'mysqldump of shop failed' "$T/b.err" &&
	[ "$(listing | grep -c '^\.')" = 0 ]; then t_pass; else t_fail "exit $rc $(cat "$T/b.err")"; fi
rm -f "$D"/mysql-shop-*

# ---- MySQL through recorders ----------------------------------------------

mod_recorders "$T/my.rec" mysqldump mysql
mod_ctl mysqldump <<'EOS'
printf -- '-- MariaDB dump\nCREATE DATABASE shop;\nINSERT INTO t VALUES (1,"MYROWTEXT");\n'
EOS
mod_ctl mysql <<EOS
case "\$*" in
*"SELECT COUNT(*)"*) cat "$T/my.tables" ;;
*) cat >"$T/my.restored" ;;
esac
EOS
printf '[client]\nhost="localhost"\nport=3306\n' >"$R/etc/firstboot-stack/backup-my.cnf"
setconf "MYSQL_DATABASE=shop
MYSQL_DEFAULTS=/etc/firstboot-stack/backup-my.cnf
"
t_case "MySQL: mysqldump --defaults-extra-file first, --single-transaction, encrypted to mysql-shop-<time>.sql.age"
sleep 1.1
if backup PATH="$MOD_REC/bin:$PATH" && m=$(find "$D" -name 'mysql-shop-*.sql.age') && [ "$(echo "$m" | wc -l)" = 1 ] &&
	mod_called "^mysqldump --defaults-extra-file=$R/etc/firstboot-stack/backup-my.cnf --single-transaction --no-tablespaces --hex-blob --databases shop\$" &&
	! grep -aq MYROWTEXT "$m" && age -d -i "$T/id.txt" "$m" | grep -q MYROWTEXT; then t_pass; else
	t_fail "$(cat "$T/b.err") $(mod_calls "")"
fi

t_case "MySQL restore: refused while shop holds tables, then the decrypted dump piped to mysql"
echo 3 >"$T/my.tables"
env STACK_ROOT="$R" PATH="$MOD_REC/bin:$PATH" bash "$R/usr/local/sbin/restore_db.sh" "$m" --identity "$T/id.txt" >"$T/r.out" 2>"$T/r.err"
rc=$?
echo 0 >"$T/my.tables"
if [ $rc = 1 ] && grep -q 'holds 3 tables' "$T/r.err" && [ ! -e "$T/my.restored" ] &&
	env STACK_ROOT="$R" PATH="$MOD_REC/bin:$PATH" bash "$R/usr/local/sbin/restore_db.sh" "$m" --identity "$T/id.txt" >"$T/r.out" 2>"$T/r.err" &&
	grep -q MYROWTEXT "$T/my.restored" && mod_called "^mysql --defaults-extra-file=$R/etc/firstboot-stack/backup-my.cnf\$"; then t_pass; else
	t_fail "exit $rc $(cat "$T/r.err")"
fi

t_case "MySQL: a failing mysqldump is exit 1 with no file of it, the PostgreSQL backup still made"
mod_fail mysqldump 2
nm=$(find "$D" -name 'mysql-shop-*.sql.age' | wc -l)
np=$(dumps | wc -l)
sleep 1.1
backup PATH="$MOD_REC/bin:$PATH"
rc=$?
if [ $rc = 1 ] && [ "$(find "$D" -name 'mysql-shop-*.sql.age' | wc -l)" = "$nm" ] && [ "$(dumps | wc -l)" = $((np + 1)) ] &&
	grep -q 'mysqldump of shop failed' "$T/b.err" && [ "$(listing | grep -c '^\.')" = 0 ]; then t_pass; else
	t_fail "exit $rc $(cat "$T/b.err")"
fi
