#!/bin/bash
# The node module, for real where it can be. imagegen checks the apps in
# site.yaml (bad input refused at site.yaml:line:column, nothing written)
# and renders ecosystem.config.js and apps.env.js, which node reads back.
# The module then runs through the real agent on a temporary root with
# the REAL PM2 (installed from npm into a prefix cached under the build
# dir, its own PM2_HOME under the root), the real node, npm and git: it
# clones a tiny HTTP app from a local repository, runs npm ci and the
# build script, starts it in cluster mode with 2 instances, and a client
# sends requests without pause while a new commit is deployed (pm2
# startOrReload): none may fail. A killed worker is restarted; the
# pm2-logrotate settings are read back. Faked: apt-get and dpkg-query
# (recorders: the NodeSource key and repository line are asserted byte
# for byte), `pm2 startup` (it would write this machine's
# /etc/systemd/system and call its systemctl; the fake writes the unit
# under the root), and runuser (runs the command as root: there is no
# deploy user on this machine). Real as well: the private repository
# cases' sshd (Debian's openssh-server, in a private mount namespace made
# with unshare) and git http-backend behind tests/e2e/peers/git-https.py.
# Everything started is killed at the end.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"

ig() { "$IMAGEGEN" "$1" --modules-dir "$TOP/modules" --templates-dir "$TOP/templates" "${@:2}"; }
FPR=6F71F525282841EEDAF851B42F59B5F99B1BE0B4
PM2_VERSION=7.0.4

t_check "the node manifest validates" "$FIRSTBOOT" validate "$TOP/modules/node/manifest.yml"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "not ok - node and npm are installed (packaging/deps.sh)"
	exit 1
fi

# ---- imagegen: the apps in site.yaml ------------------------------------

R=$T/r
S=$T/site
mkdir -p "$S"
# site [EXTRA-APP-YAML]: a site with the two apps (and EXTRA as a third
# app's lines, for the bad-input cases).
site() {
	cat >"$S/site.yaml" <<EOF
name: shop
hostname: shop-1
provider: nocloud
modules:
  node:
    repo_url: file://$T/repo.git
    repo_ref: main
    build_script: build
    apps:
      - name: web
        cwd: $R/srv/app
        script: server.js
        args: [--greeting, "hi there"]
        exec_mode: cluster
        instances: 2
        max_memory_restart: 200M
        env:
          PORT: {env: WEB_PORT}
          SECRET: {env: WEB_SECRET}
      - name: nightly
        cwd: $R/srv/app
        script: job.js
        cron_restart: "0 3 * * *"
        autorestart: false
${1:-}
EOF
}
SECRET=$' s3cr"e\'t\\ ${HOME} `x`\n\u2028end'
export WEB_SECRET=$SECRET WEB_PORT=0

t_case "imagegen renders the ecosystem and the environments; node reads them back exact"
site
if expect_rc 0 ig render "$S/site.yaml" -o "$T/b1" &&
	node -e '
		const e = require(process.argv[1]), env = require(process.argv[2]);
		const w = e.apps[0], n = e.apps[1];
		const ok = e.apps.length === 2 && w.name === "web" && w.exec_mode === "cluster" && w.instances === 2 &&
			w.args.join("|") === "--greeting|hi there" && w.max_memory_restart === "200M" && w.autorestart === true &&
			w.env.SECRET === process.env.WEB_SECRET && n.cron_restart === "0 3 * * *" && n.autorestart === false &&
			n.exec_mode === "fork" && n.instances === 1 && Object.keys(n.env).length === 0;
		process.exit(ok ? 0 : 1);' "$T/b1/files/etc/firstboot/node/ecosystem.config.js" "$T/b1/files/etc/firstboot/node/apps.env.js" &&
	! grep -q 's3cr' "$T/b1/files/etc/firstboot/node/ecosystem.config.js" &&
	[ "$(stat -c %a "$T/b1/files/etc/firstboot/node/apps.env.js")" = 600 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

# bad WANT YAML...: the third app's lines; render fails with WANT, exit 1, no output.
bad() {
	local want=$1
	shift
	site "$(printf '%s\n' "$@")"
	rm -rf "$T/bad"
	if expect_rc 1 ig render "$S/site.yaml" -o "$T/bad" && grep -qF "$want" "$T/err" && [ ! -e "$T/bad" ]; then
		return 0
	fi
	echo "  # want: $want; got: $(cat "$T/err")" >&2
	return 1
}
t_case "bad apps are refused at site.yaml:line:column, exit 1, nothing written"
if bad "site.yaml:25:44: app x: 'exec_mode' must be fork or cluster, not \"forky\"" \
	'      - {name: x, script: a.js, exec_mode: forky}' &&
	bad "site.yaml:25:44: app x: 'instances' must be a number from 1 to 256" '      - {name: x, script: a.js, instances: 0}' &&
	bad "site.yaml:25:53: app x: 'max_memory_restart' must be a number of bytes or like 300M, 512K, 1G, not \"300MB\"" \
		'      - {name: x, script: a.js, max_memory_restart: 300MB}' &&
	bad "site.yaml:25:47: app x: 'cron_restart' must be a cron pattern of 5 or 6 fields, not \"every day\"" \
		'      - {name: x, script: a.js, cron_restart: "every day"}' &&
	bad "site.yaml:27:15: app x: '1X' is not an environment variable name" '      - name: x' '        script: a.js' '        env: {1X: y}' &&
	bad "site.yaml:25:16: module node: app web is listed twice" '      - {name: web, script: a.js}' &&
	bad "site.yaml:25:33: unknown key 'watch' in an app (module node)" '      - {name: x, script: a.js, watch: true}' &&
	bad "site.yaml:25:16: app name must be a letter" '      - {name: all, script: a.js}' &&
	bad "site.yaml:25:16: app api.json: 'name' must not hold \".json\": PM2 takes a name holding .json" '      - {name: api.json, script: a.js}' &&
	bad "site.yaml:25:16: app a.config.js: 'name' must not hold \".config.js\"" '      - {name: a.config.js, script: a.js}' &&
	bad "site.yaml:25:38: app x: 'cwd' must be an absolute path" '      - {name: x, script: a.js, cwd: rel/dir}' &&
	bad "site.yaml:25:46: app x: 'autorestart' must be true or false" '      - {name: x, script: a.js, autorestart: maybe}' &&
	bad "site.yaml:25:9: app: missing 'script'" '      - {name: x}' &&
	bad "site.yaml:25:40: an argument must be a string or {env: VARIABLE}" '      - {name: x, script: a.js, args: [{a: b}]}' &&
	bad "site.yaml:27:24: 'A' is taken from the environment variable NOPE_UNSET, which is not set" \
		'      - name: x' '        script: a.js' '        env: {A: {env: NOPE_UNSET}}'; then
	t_pass
else t_fail "see above"; fi
site

# ---- the module: Node.js from NodeSource (recorders) --------------------

mod_root "$R"
mod_recorders "$T/rec" "${MOD_COMMANDS[@]}" apt-cache npm pm2 node git
mkdir -p "$R/home/deploy" "$R/srv" "$R/etc/systemd/system"
echo "deploy:x:1000:1000::/home/deploy:/bin/bash" >>"$R/etc/passwd"
echo "deploy:x:1000:" >>"$R/etc/group"
# dpkg-query knows nodejs once apt-get installed it; apt-cache offers
# Debian 12's nodejs 18.
mod_ctl dpkg-query <<EOF
[ -e "$T/rec/state/pkgs/nodejs" ] || exit 1
printf 'installed 26.3.0-1nodesource1'
EOF
mod_ctl apt-cache <<'EOF'
printf 'nodejs:\n  Installed: (none)\n  Candidate: 18.19.0+dfsg-6~deb12u2\n'
EOF
mod_fail npm 1
mod_file "$T/b1/files/etc/firstboot/node/ecosystem.config.js" /etc/firstboot/node/ecosystem.config.js 0600
mod_file "$T/b1/files/etc/firstboot/node/apps.env.js" /etc/firstboot/node/apps.env.js 0600

t_case "Node.js 26 from NodeSource: the pinned key and the repository line exactly, then apt-get install nodejs"
if ! mod_run "$R" node && [ "$(mod_exit "$R" node)" = 2 ] &&
	cmp -s "$R/etc/apt/keyrings/nodesource.asc" "$TOP/modules/node/nodesource-repo.gpg.key" &&
	[ "$(gpg --show-keys --with-colons "$R/etc/apt/keyrings/nodesource.asc" 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }')" = $FPR ] &&
	[ "$(cat "$R/etc/apt/sources.list.d/nodesource.list")" = "deb [signed-by=/etc/apt/keyrings/nodesource.asc] https://deb.nodesource.com/node_26.x nodistro main" ] &&
	[ "$(stat -c '%a %u' "$R/etc/apt/keyrings/nodesource.asc" "$R/etc/apt/sources.list.d/nodesource.list" | sort -u)" = "644 0" ] &&
	mod_order '^apt-get .*update$' '^apt-cache policy nodejs$' '^apt-get .*install --no-install-recommends nodejs$' \
		'^npm install -g --no-fund --no-audit pm2@7.0.4$'; then t_pass; else
	t_fail "exit $(mod_exit "$R" node): $(mod_calls "" | tr '\n' ';')"
fi

t_case "an npm that fails is exit 2 (retried); Debian's nodejs is taken when it is the major asked for, with npm"
R2=$T/r2
mod_root "$R2"
mod_recorders "$T/rec2" "${MOD_COMMANDS[@]}" apt-cache npm pm2 node git
mkdir -p "$R2/home/deploy"
echo "deploy:x:1000:1000::/home/deploy:/bin/bash" >>"$R2/etc/passwd"
mod_ctl dpkg-query <<EOF
[ -e "$T/rec2/state/pkgs/nodejs" ] || exit 1
printf 'installed 18.19.0+dfsg-6~deb12u2'
EOF
mod_ctl apt-cache <<'EOF'
printf 'nodejs:\n  Installed: (none)\n  Candidate: 18.19.0+dfsg-6~deb12u2\n'
EOF
mod_fail npm 1
if [ "$(mod_attempts "$R" node)" = 3 ] && ! mod_run "$R2" node node_major=18 && [ "$(mod_exit "$R2" node)" = 2 ] &&
	mod_called '^apt-get .*install --no-install-recommends nodejs npm$' && [ ! -e "$R2/etc/apt/sources.list.d/nodesource.list" ] &&
	[ ! -e "$R2/etc/apt/keyrings/nodesource.asc" ]; then t_pass; else t_fail "$(mod_calls "" | tr '\n' ';')"; fi

t_case "a nodejs of another major after the install is exit 3; bad inputs are exit 1"
mod_ctl_reset
mod_ctl dpkg-query <<EOF
[ -e "$T/rec2/state/pkgs/nodejs" ] || exit 1
printf 'installed 18.19.0+dfsg-6~deb12u2'
EOF
if ! mod_run "$R2" node node_major=22 node_source=nodesource && [ "$(mod_exit "$R2" node)" = 3 ] &&
	mod_lastlog "$R2" node | grep -q 'nodejs 18 is installed, not 22' &&
	! mod_exec "$R2" node pm2_version=latest && grep -q 'pm2_version must be' "$MOD_ERR" &&
	! mod_exec "$R2" node repo_url='https://x/y z' && grep -q 'repo_url must be' "$MOD_ERR" &&
	! mod_exec "$R2" node logrotate_max_size=10MB && grep -q 'logrotate_max_size must be' "$MOD_ERR"; then t_pass; else
	t_fail "exit $(mod_exit "$R2" node): $(mod_lastlog "$R2" node | tail -n 2)"
fi

# ---- the module with the real PM2 ----------------------------------------

# PM2 from npm into a prefix under the build dir (kept: reruns are fast);
# npm's cache there too, so pm2 install pm2-logrotate is quick the next time.
CACHE=$(cd "$(dirname "$FIRSTBOOT")" && pwd)/node-cache
PREFIX=$CACHE/pm2-$PM2_VERSION
export NPM_CONFIG_CACHE=$CACHE/npm NPM_CONFIG_PREFER_OFFLINE=true NPM_CONFIG_UPDATE_NOTIFIER=false
if [ ! -x "$PREFIX/bin/pm2" ]; then
	rm -rf "$PREFIX.tmp"
	if ! timeout 600 npm install -g --prefix "$PREFIX.tmp" --no-fund --no-audit "pm2@$PM2_VERSION" >"$T/npm.log" 2>&1; then
		echo "not ok - npm installs pm2@$PM2_VERSION (the registry must be reachable)"
		sed 's/^/  # /' "$T/npm.log" | tail -n 5
		exit 1
	fi
	mv "$PREFIX.tmp" "$PREFIX"
fi
export PM2_HOME=$R/home/deploy/.pm2
pm2_() { HOME=$R/home/deploy timeout 60 "$PREFIX/bin/pm2" "$@"; }
# stop_pm2: pm2 kill, then the daemon's pid if it is still there.
stop_pm2() {
	local pid
	pm2_ kill >/dev/null 2>&1
	pid=$(cat "$PM2_HOME/pm2.pid" 2>/dev/null)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
}
trap 'stop_pm2; _cleanup' EXIT

mod_recorders "$T/rec" "${MOD_COMMANDS[@]}" apt-cache npm pm2 node git
mod_ctl_reset
mod_reset_calls
mod_ctl dpkg-query <<'EOF'
printf 'installed 26.3.0-1nodesource1'
EOF
# npm as the agent runs it has a clean environment: the prefix, the cache
# and this machine's extra CA certificates (a proxy's, if any) come here.
mod_ctl npm <<EOF
export NPM_CONFIG_PREFIX="$PREFIX" NPM_CONFIG_CACHE="$NPM_CONFIG_CACHE" NPM_CONFIG_PREFER_OFFLINE=true NPM_CONFIG_UPDATE_NOTIFIER=false
${NODE_EXTRA_CA_CERTS:+export NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"}
exec "\$REC_REAL" "\$@"
EOF
# pm2 (and so its daemon, the apps and the npm it runs for pm2 install)
# gets PATH without the recorders: a fork-mode app's node would be the
# recorder's wrapper.
mod_ctl pm2 <<EOF
PATH=\$(printf '%s' "\$PATH" | tr : '\\n' | grep -vxF "$T/rec/bin" | paste -sd:)
export NPM_CONFIG_CACHE="$NPM_CONFIG_CACHE" NPM_CONFIG_PREFER_OFFLINE=true NPM_CONFIG_UPDATE_NOTIFIER=false
${NODE_EXTRA_CA_CERTS:+export NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"}
# The failure case: a pm2 delete that fails.
if [ "\$1" = delete ] && [ -e "$T/fail-delete" ]; then
	echo "[PM2][ERROR] failing on purpose" >&2
	exit 1
fi
# Once each: a startOrReload, a save that fails (the flag goes with it).
for c in startOrReload save; do
	if [ "\$1" = "\$c" ] && [ -e "$T/fail-\$c" ]; then
		rm -f "$T/fail-\$c"
		echo "[PM2][ERROR] failing on purpose" >&2
		exit 1
	fi
done
if [ "\$1" = startup ]; then
	printf '[Unit]\nDescription=PM2 (test)\n' >"$R/etc/systemd/system/pm2-deploy.service"
	exit 0
fi
exec "$PREFIX/bin/pm2" "\$@"
EOF
mod_ctl runuser <<EOF
[ "\$1" = -u ] && [ "\$3" = -- ] || exit 64
shift 3
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'
# The token case's git server has a certificate of its own, which git
# trusts through GIT_SSL_CAINFO (git's Documentation/config/http.txt).
export GIT_SSL_CAINFO="$T/tls.pem"
exec "\$@"
EOF
mod_passthrough node
mod_passthrough git

# The app: an HTTP server answering with its version (written by the
# build script), its greeting argument and whether its secret arrived.
# PM2 reloads a cluster worker by starting its successor and, once that
# one listens, sending the old one SIGINT (Unitech/pm2 lib/God/Reload.js
# hardReload, lib/God/Methods.js killProcess). Until the cluster's
# primary has taken the old worker out of its round robin, it may still
# hand it a connection, which the worker passes back if it is alive
# (Node's lib/internal/cluster/child.js onconnection); a worker that
# exits as soon as its server closed leaves that connection unanswered.
# So on SIGINT the worker stops listening without dropping the
# connections it took (net's close, not http's, which would also destroy
# one whose request it has not read yet), finishes them, then
# disconnects from the primary (worker.disconnect waits for its ack)
# and only then exits.
W=$T/work
mkdir -p "$W"
git init -q -b main "$W"
git init -q --bare -b main "$T/repo.git"
cat >"$W/server.js" <<'EOF'
const http = require("http");
const fs = require("fs");
const version = fs.readFileSync(__dirname + "/dist/version.txt", "utf8").trim();
const greeting = process.argv[process.argv.indexOf("--greeting") + 1];
const server = http.createServer((req, res) => {
  const secret = require("crypto").createHash("sha256").update(process.env.SECRET || "").digest("hex");
  res.end(`${version} ${greeting.replace(/ /g, "_")} ${secret} ${process.pid}\n`);
});
server.listen(Number(process.env.PORT));
process.on("SIGINT", () => {
  const worker = require("cluster").worker;
  worker.once("disconnect", () => process.exit(0));
  require("net").Server.prototype.close.call(server, () => worker.disconnect());
});
EOF
echo 'setInterval(() => {}, 1000);' >"$W/job.js"
cat >"$W/package.json" <<'EOF'
{"name": "shop", "version": "1.0.0", "private": true,
 "scripts": {"build": "mkdir -p dist && git rev-parse --short HEAD > dist/version.txt"}}
EOF
(cd "$W" && npm install --package-lock-only --no-fund --no-audit >/dev/null 2>&1)
echo dist/ >"$W/.gitignore"
# render_files DIR: site.yaml (without nightly when NO_NIGHTLY is set)
# rendered into DIR, and its files put in the root's bundle.
render_files() {
	site
	if [ -n "${NO_NIGHTLY:-}" ]; then sed -i '/- name: nightly/,/autorestart: false/d' "$S/site.yaml"; fi
	ig render "$S/site.yaml" -o "$1" >/dev/null
	mod_files_reset
	mod_file "$1/files/etc/firstboot/node/ecosystem.config.js" /etc/firstboot/node/ecosystem.config.js 0600
	mod_file "$1/files/etc/firstboot/node/apps.env.js" /etc/firstboot/node/apps.env.js 0600
}
commit() { (cd "$W" && git add -A && git -c user.name=t -c user.email=t@t commit -qm "$1" && git push -q "$T/repo.git" main); }
commit one

PORT=$(free_port)
export WEB_PORT=$PORT
render_files "$T/b2"
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

get() { curl -s --max-time 5 "http://127.0.0.1:$PORT/"; }
npids() { pids "$1" | wc -w; }
get_field() { get | cut -d' ' -f"$1"; }
pids() { pm2_ jlist 2>/dev/null | node -e 'const l = JSON.parse(require("fs").readFileSync(0, "utf8").split("\n").filter(l => l.startsWith("[")).pop() || "[]"); console.log(l.filter(p => p.name === process.argv[1] && p.pm2_env.status === "online").map(p => p.pid).sort().join(" "))' "$1"; }
v1=$(git -C "$W" rev-parse --short HEAD)

t_case "first run: code cloned and built, PM2 started: 2 cluster workers answer with the secret from apps.env.js"
if mod_run "$R" node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=build &&
	[ "$(git -c safe.directory='*' -C "$R/srv/app" rev-parse --short HEAD)" = "$v1" ] && [ "$(cat "$R/srv/app/dist/version.txt")" = "$v1" ] &&
	[ "$(stat -c %u "$R/srv/app")" = 1000 ] &&
	mod_called '^npm ci --omit=dev --no-fund --no-audit$' && mod_called '^npm run build$' &&
	mod_called "^pm2 startOrReload $R/home/deploy/.pm2-apps/ecosystem.config.js --update-env$" &&
	mod_called '^pm2 startup systemd -u deploy --hp /home/deploy$' && mod_called '^pm2 save --force$' &&
	wait_eq 20 2 npids web && [ "$(get | cut -d' ' -f1-3)" = "$v1 hi_there $(sha "$SECRET")" ] &&
	[ "$(stat -c '%a %u' "$R/home/deploy/.pm2-apps/apps.env.js")" = "600 1000" ]; then t_pass; else
	t_fail "$(mod_lastlog "$R" node | tail -n 5)"
fi

t_case "node reads the deploy user's files (pm2-logrotate's package.json, module_conf.json) only as that user, never as root"
# Each node call's HOME tells who ran it: the deploy user's (runuser,
# as_user) or the agent's (/root); a file under the deploy user's home
# on a root's node command line must be the former.
bad=$(jq -r --arg h "$R/home/deploy" 'select(.cmd == "node") | select(any(.argv[]; startswith($h + "/"))) |
	select(.env.HOME != $h) | .argv | join(" ")' "$MOD_REC/calls.jsonl")
if [ -z "$bad" ] && jq -e -s --arg h "$R/home/deploy" 'any(.[]; .cmd == "node" and .env.HOME == $h and
	any(.argv[]; endswith("/module_conf.json")))' "$MOD_REC/calls.jsonl" >/dev/null &&
	jq -e -s --arg s "$R/etc/firstboot/node/ecosystem.config.js" 'any(.[]; .cmd == "node" and .argv[-1] == $s)' \
		"$MOD_REC/calls.jsonl" >/dev/null; then t_pass; else
	t_fail "as root: $bad; node calls: $(jq -c 'select(.cmd == "node") | [.env.HOME, .argv[-2:]]' "$MOD_REC/calls.jsonl" | cut -c1-300)"
fi

t_case "pm2-logrotate installed and set: max_size 10M, retain 30, compress true"
conf=$(node -e 'const c = require(process.argv[1])["pm2-logrotate"]; console.log(c.max_size, c.retain, c.compress)' "$PM2_HOME/module_conf.json" 2>/dev/null)
if [ "$conf" = "10M 30 true" ] && [ -f "$PM2_HOME/modules/pm2-logrotate/node_modules/pm2-logrotate/package.json" ] &&
	wait_eq 20 1 npids pm2-logrotate; then t_pass; else t_fail "conf: $conf"; fi

t_case "a second run changes nothing: no install, no reload, no save, the same workers"
before=$(pids web)
mod_reset_calls
if mod_run "$R" node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=build &&
	mod_not_called '^pm2 (startOrReload|reload|restart|save|set|install|startup)' && mod_not_called '^npm (install|ci|run)' &&
	mod_not_called '^apt-get' && [ "$(pids web)" = "$before" ]; then t_pass; else t_fail "$(mod_calls pm2 | tr '\n' ';')"; fi

t_case "a new commit is deployed and reloaded with zero failed requests under continuous load (never restart)"
echo "// two" >>"$W/server.js"
commit two
v2=$(git -C "$W" rev-parse --short HEAD)
cat >"$T/load.js" <<'EOF'
// Sends requests one after another until the stop file appears and 200
// were sent (at most 120 s); counts answers and failures (refused, reset,
// or no answer in 30 s: generous, for a machine whose CPUs are all busy).
// Each version first answered is added as a line to OUT.seen.
const http = require("http"), fs = require("fs");
const [port, stop, out] = process.argv.slice(2);
let ok = 0, failed = 0, versions = new Set(), errors = [];
const end = Date.now() + 120000;
function one() {
  if ((fs.existsSync(stop) && ok + failed >= 200) || Date.now() > end) {
    fs.writeFileSync(out, `${ok} ${failed} ${[...versions].sort().join(",")} ${errors.slice(0, 3).join(";")}\n`);
    return;
  }
  const req = http.get({host: "127.0.0.1", port, path: "/", agent: false, timeout: 30000}, res => {
    let body = "";
    res.on("data", d => body += d);
    res.on("end", () => { if (res.statusCode === 200) { ok++; const v = body.split(" ")[0]; if (!versions.has(v)) { versions.add(v); fs.appendFileSync(out + ".seen", v + "\n"); } } else { failed++; errors.push("status " + res.statusCode); } one(); });
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", e => { failed++; errors.push(e.code || e.message); one(); });
}
one();
EOF
before=$(pids web)
mod_reset_calls
node "$T/load.js" "$PORT" "$T/stop" "$T/load.out" &
load=$!
_pids+=("$load")
# The load has had an answer from the old version before the reload, and
# one from the new after it.
wait_for 30 grep -qx "$v1" "$T/load.out.seen"
mod_run "$R" node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=build
rc=$?
wait_eq 20 "$v2" get_field 1
wait_for 30 grep -qx "$v2" "$T/load.out.seen"
touch "$T/stop"
wait_for 40 test -s "$T/load.out"
read -r ok failed versions _ <"$T/load.out"
# Every request answered 200, none refused, reset or unanswered; both
# versions answered, so the requests spanned the reload.
if [ $rc = 0 ] && [ "$failed" = 0 ] && [ "$ok" -ge 200 ] && [ "$versions" = "$(printf '%s\n' "$v1" "$v2" | sort | paste -sd,)" ] &&
	mod_called "^pm2 startOrReload " && mod_not_called '^pm2 (restart|start |stop|delete)' &&
	[ "$(pids web | wc -w)" = 2 ] && [ "$(pids web)" != "$before" ]; then t_pass; else
	t_fail "rc $rc, load: $(cat "$T/load.out"), pids $before -> $(pids web)"
fi

t_case "a killed worker is restarted by PM2"
victim=$(pids web | awk '{print $1}')
# replaced: two web workers online, the victim not among them.
replaced() { local p; p=$(pids web); [ "$(wc -w <<<"$p")" = 2 ] && [[ " $p " != *" $victim "* ]]; }
kill -9 "$victim"
if wait_for 30 replaced && [ "$(get | awk '{print $1}')" = "$v2" ]; then t_pass; else t_fail "pids: $(pids web)"; fi

t_case "a changed environment reloads; the secret is in no command line, log or readable file"
export WEB_SECRET="other-$SECRET"
render_files "$T/b3"
nightly=$(pids nightly)
mod_reset_calls
if mod_run "$R" node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=build &&
	mod_called "^pm2 startOrReload $R/home/deploy/.pm2-apps/ecosystem.config.js --update-env --only web\$" && mod_not_called '^npm (ci|run)' &&
	wait_eq 20 "$(sha "other-$SECRET")" get_field 3 && mod_no_secrets "$R" "s3cr\"e'" &&
	[ -n "$nightly" ] && [ "$(pids nightly)" = "$nightly" ]; then t_pass; else t_fail "$(get); nightly $nightly -> $(pids nightly)"; fi

t_case "a startOrReload that fails is exit 3, and the next run reloads web with its new environment (not \"nothing changed\")"
export WEB_SECRET="retry-$SECRET"
render_files "$T/b3r"
touch "$T/fail-startOrReload"
mod_reset_calls
mod_run "$R" node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=build
rc1=$(mod_exit "$R" node)
log1=$(mod_lastlog "$R" node)
mod_reset_calls
if [ "$rc1" = 3 ] && grep -q 'pm2 startOrReload failed' <<<"$log1" && [ "$(get_field 3)" = "$(sha "other-$SECRET")" ] &&
	mod_run "$R" node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=build &&
	mod_called "^pm2 startOrReload $R/home/deploy/.pm2-apps/ecosystem.config.js --update-env --only web\$" &&
	! mod_lastlog "$R" node | grep -q 'nothing changed' && wait_eq 20 "$(sha "retry-$SECRET")" get_field 3; then t_pass; else
	t_fail "exit $rc1: $(tail -n 2 <<<"$log1"); then $(mod_calls pm2 | tr '\n' ';') $(mod_lastlog "$R" node | tail -n 2)"
fi

t_case "firstboot apply: v1, then v2 with web's environment changed: node runs again (watched file changed: apps.env.js), PM2 reloads web alone, nightly keeps its process, nothing installed"
NODE_IN=(node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=build)
MOD_INSTANCE="i-node"
mod_run "$R" "${NODE_IN[@]}"
rc1=$?
export WEB_SECRET="v2-$SECRET"
render_files "$T/b5"
mod_bundle "${NODE_IN[@]}"
nightly=$(pids nightly)
before=$(pids web)
mod_reset_calls
PATH="$MOD_REC/bin:$PATH" timeout 120 "$FIRSTBOOT" apply --root "$R" --user-data "$MOD_BUNDLE" >"$T/apply.out" 2>&1
rc2=$?
unset MOD_INSTANCE
if [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$(_mod_status "$R" node why)" = "watched file changed: /etc/firstboot/node/apps.env.js" ] &&
	[ "$(mod_calls pm2 | grep -c '^pm2 startOrReload')" = 1 ] &&
	mod_called "^pm2 startOrReload $R/home/deploy/.pm2-apps/ecosystem.config.js --update-env --only web\$" &&
	mod_not_called '^pm2 (restart|start |stop|delete|install|set|startup)|^npm (install|ci|run)|^apt-get|^git .*(clone|checkout)' &&
	wait_eq 20 "$(sha "v2-$SECRET")" get_field 3 && [ "$(pids web | wc -w)" = 2 ] && [ "$(pids web)" != "$before" ] &&
	[ "$(pids nightly)" = "$nightly" ]; then t_pass; else
	t_fail "run $rc1, apply $rc2 ($(_mod_status "$R" node why)): $(mod_calls pm2 | tr '\n' ';') $(tail -n 3 "$T/apply.out")"
fi

# all_names: every name in PM2's list, online or not, sorted.
all_names() { pm2_ jlist 2>/dev/null | node -e 'const l = JSON.parse(require("fs").readFileSync(0, "utf8").split("\n").filter(l => l.startsWith("[")).pop() || "[]"); console.log(l.map(p => p.name).sort().join(" "))'; }

t_case "an app removed from site.yaml is deleted from PM2 (pm2 delete, pm2 save); web keeps its workers, pm2-logrotate and a process started by hand stay"
# A process the module did not start, with a name not in the ecosystem.
pm2_ start "$R/srv/app/job.js" --name handmade >/dev/null 2>&1
wait_eq 20 1 npids handmade
hand=$(pids handmade) web=$(pids web) lr=$(pids pm2-logrotate) nightly=$(pids nightly)
NO_NIGHTLY=1 render_files "$T/b6"
mod_reset_calls
if mod_run "$R" "${NODE_IN[@]}" && [ -n "$nightly" ] && mod_called '^pm2 delete nightly$' &&
	[ "$(mod_calls pm2 | grep -c '^pm2 delete')" = 1 ] && mod_order '^pm2 delete nightly$' '^pm2 save --force$' &&
	mod_not_called '^pm2 startOrReload' && [ "$(all_names)" = "handmade pm2-logrotate web web" ] &&
	! kill -0 "$nightly" 2>/dev/null && [ "$(pids web)" = "$web" ] && [ "$(pids handmade)" = "$hand" ] &&
	[ "$(pids pm2-logrotate)" = "$lr" ] && mod_lastlog "$R" node | grep -q 'deleting nightly from PM2' &&
	node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); process.exit(d.some(p => p.name === "nightly") || !d.some(p => p.name === "handmade") ? 1 : 0)' \
		"$PM2_HOME/dump.pm2" && [ "$(cat "$R/var/lib/firstboot/node/apps.names")" = web ]; then t_pass; else
	t_fail "exit $(mod_exit "$R" node): $(mod_calls pm2 | tr '\n' ';') names: $(all_names); $(mod_lastlog "$R" node | tail -n 3)"
fi

t_case "the next run deletes nothing and saves nothing; the process started by hand still runs"
mod_reset_calls
if mod_run "$R" "${NODE_IN[@]}" && mod_not_called '^pm2 (delete|save|startOrReload)' &&
	[ "$(all_names)" = "handmade pm2-logrotate web web" ] && [ "$(pids web)" = "$web" ] && [ "$(pids handmade)" = "$hand" ]; then t_pass; else
	t_fail "exit $(mod_exit "$R" node): $(mod_calls pm2 | tr '\n' ';') names: $(all_names)"
fi

t_case "a pm2 delete that fails is exit 3, named in the log, nothing saved; the next run deletes it"
render_files "$T/b7"
mod_run "$R" "${NODE_IN[@]}"
rc1=$?
NO_NIGHTLY=1 render_files "$T/b6"
touch "$T/fail-delete"
mod_reset_calls
mod_run "$R" "${NODE_IN[@]}"
rc2=$(mod_exit "$R" node)
log2=$(mod_lastlog "$R" node)
calls2=$(mod_calls pm2)
rm -f "$T/fail-delete"
mod_reset_calls
if [ $rc1 = 0 ] && [ "$rc2" = 3 ] && grep -q 'pm2 delete nightly failed' <<<"$log2" && ! grep -q '^pm2 save' <<<"$calls2" &&
	mod_run "$R" "${NODE_IN[@]}" && mod_called '^pm2 delete nightly$' && mod_called '^pm2 save --force$' &&
	[ "$(all_names)" = "handmade pm2-logrotate web web" ] && [ "$(pids handmade)" = "$hand" ]; then t_pass; else
	t_fail "exits $rc1 $rc2: $(tail -n 2 <<<"$log2"); names: $(all_names)"
fi

t_case "a pm2 save that fails after pm2 delete is exit 3; the next run finds the app gone from PM2 and still saves: dump.pm2 no longer holds it"
render_files "$T/b7"
mod_run "$R" "${NODE_IN[@]}"
rc1=$?
NO_NIGHTLY=1 render_files "$T/b6"
touch "$T/fail-save"
mod_reset_calls
mod_run "$R" "${NODE_IN[@]}"
rc2=$(mod_exit "$R" node)
log2=$(mod_lastlog "$R" node)
calls2=$(mod_calls pm2)
names2=$(cat "$R/var/lib/firstboot/node/apps.names")
mod_reset_calls
# in_dump NAME: whether PM2's dump (what the boot resurrects) holds NAME.
in_dump() { node -e 'process.exit(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).some(p => p.name === process.argv[2]) ? 0 : 1)' "$PM2_HOME/dump.pm2" "$1"; }
if [ $rc1 = 0 ] && [ "$rc2" = 3 ] && grep -q 'pm2 save failed after deleting nightly' <<<"$log2" && grep -q '^pm2 delete nightly$' <<<"$calls2" &&
	in_dump nightly && grep -qx nightly <<<"$names2" &&
	mod_run "$R" "${NODE_IN[@]}" && mod_not_called '^pm2 delete' && mod_called '^pm2 save --force$' && ! in_dump nightly &&
	[ "$(cat "$R/var/lib/firstboot/node/apps.names")" = web ] && [ "$(pids handmade)" = "$hand" ]; then t_pass; else
	t_fail "exits $rc1 $rc2: $(tail -n 2 <<<"$log2"); names: $names2; $(mod_calls pm2 | tr '\n' ';')"
fi
pm2_ delete handmade >/dev/null 2>&1

# An app named api.json, as an ecosystem rendered before imagegen refused
# such names would have started: PM2 (7.0.4 lib/Common.js isConfigFile,
# lib/API.js delete) reads `pm2 delete api.json` as a file, from the cwd
# (/). The module deletes it by its process id, but only when no process
# has that id as its name (PM2 looks a number up as a name first).
t_case "an app PM2 takes for a file by its name (api.json) is deleted by its process id, never by the name; with its id another process's name: exit 3, nothing deleted"
pm2_ start "$R/srv/app/job.js" --name api.json >/dev/null 2>&1
wait_eq 20 1 npids api.json
api_id=$(pm2_ jlist 2>/dev/null | node -e 'const l = JSON.parse(require("fs").readFileSync(0, "utf8").split("\n").filter(l => l.startsWith("[")).pop() || "[]"); console.log(l.filter(p => p.name === "api.json").map(p => p.pm_id).join(" "))')
pm2_ start "$R/srv/app/job.js" --name "$api_id" >/dev/null 2>&1
wait_eq 20 1 npids "$api_id"
printf 'web\napi.json\n' >"$R/var/lib/firstboot/node/apps.names"
mod_reset_calls
mod_run "$R" "${NODE_IN[@]}"
rc1=$(mod_exit "$R" node)
log1=$(mod_lastlog "$R" node)
calls1=$(mod_calls pm2)
names1=$(all_names)
pm2_ delete "$api_id" >/dev/null 2>&1
wait_eq 20 0 npids "$api_id"
mod_reset_calls
if [ "$rc1" = 3 ] && grep -q 'api.json (removed from the ecosystem) is a name PM2 takes for a configuration file' <<<"$log1" &&
	! grep -q '^pm2 delete' <<<"$calls1" && [ "$names1" = "$api_id api.json pm2-logrotate web web" ] &&
	mod_run "$R" "${NODE_IN[@]}" && mod_called "^pm2 delete $api_id\$" && [ "$(mod_calls pm2 | grep -c '^pm2 delete')" = 1 ] &&
	mod_order "^pm2 delete $api_id\$" '^pm2 save --force$' && [ "$(all_names)" = "pm2-logrotate web web" ] &&
	[ "$(cat "$R/var/lib/firstboot/node/apps.names")" = web ]; then t_pass; else
	t_fail "id $api_id: exit $rc1: $(tail -n 1 <<<"$log1"); names $names1; then exit $(mod_exit "$R" node): $(mod_calls pm2 | tr '\n' ';') names $(all_names)"
fi
# Left by a failed case: deleted by its id (PM2 reads "api.json" as a file).
[ -z "$(pids api.json)" ] || pm2_ delete "$api_id" >/dev/null 2>&1
printf 'web\n' >"$R/var/lib/firstboot/node/apps.names"

# The node module's own state (commit, apps.sha256, apps.names) read
# inside the root: a link there out of the root (to this test's folder,
# relative) is refused, not followed: the outside apps.names names a
# process it would delete.
t_case "a state file of node's (commit, apps.sha256, apps.names) that is a link out of the root: exit 3 naming it; what the outside file names is not deleted"
mkdir -p "$T/state-out"
for f in commit apps.sha256 apps.names; do printf 'web\nvictim\n' >"$T/state-out/$f"; done
pm2_ start "$R/srv/app/job.js" --name victim >/dev/null 2>&1
wait_eq 20 1 npids victim
victim=$(pids victim)
st=$R/var/lib/firstboot/node
ok=1 why=""
for f in commit apps.sha256 apps.names; do
	mv "$st/$f" "$T/state.saved"
	ln -s "../../../../../state-out/$f" "$st/$f"
	mod_reset_calls
	mod_run "$R" "${NODE_IN[@]}"
	rc=$(mod_exit "$R" node)
	if [ "$rc" != 3 ] || ! mod_lastlog "$R" node | grep -q "/var/lib/firstboot/node/$f is not a regular file inside the root: refused" ||
		mod_called '^pm2 (delete|startOrReload|save)'; then
		ok=0 why+="$f: exit $rc, $(mod_lastlog "$R" node | tail -n 1); "
	fi
	rm -f "$st/$f"
	mv "$T/state.saved" "$st/$f"
done
if [ $ok = 1 ] && [ -n "$victim" ] && [ "$(pids victim)" = "$victim" ] && [ "$(cat "$T/state-out/apps.names")" = "web
victim" ]; then t_pass; else t_fail "$why victim $victim -> $(pids victim)"; fi
pm2_ delete victim >/dev/null 2>&1

t_case "a build that fails is exit 3: the running apps keep serving, and the next run deploys again"
echo "// three" >>"$W/server.js"
commit three
mod_reset_calls
if ! mod_run "$R" node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=nope && [ "$(mod_exit "$R" node)" = 3 ] &&
	mod_lastlog "$R" node | grep -q 'npm run nope failed' && mod_not_called '^pm2 startOrReload' &&
	[ "$(get | awk '{print $1}')" = "$v2" ] && [ "$(cat "$R/var/lib/firstboot/node/commit")" != "$(git -C "$W" rev-parse HEAD)" ]; then t_pass; else
	t_fail "exit $(mod_exit "$R" node): $(mod_lastlog "$R" node | tail -n 3)"
fi

t_case "an app that does not stay online is exit 3 after wait_seconds"
cat >"$T/crash.yaml" <<EOF
name: shop
hostname: shop-1
provider: nocloud
modules:
  node:
    apps:
      - {name: crash, cwd: $R/srv/app, script: crash.js}
EOF
ig render "$T/crash.yaml" -o "$T/b4" >/dev/null
mod_files_reset
mod_file "$T/b4/files/etc/firstboot/node/ecosystem.config.js" /etc/firstboot/node/ecosystem.config.js 0600
mod_file "$T/b4/files/etc/firstboot/node/apps.env.js" /etc/firstboot/node/apps.env.js 0600
echo 'process.exit(1);' >"$R/srv/app/crash.js"
if ! mod_run "$R" node app_dir=/srv/app wait_seconds=3 && [ "$(mod_exit "$R" node)" = 3 ] &&
	mod_lastlog "$R" node | grep -q 'not all online after 3 s'; then t_pass; else t_fail "exit $(mod_exit "$R" node)"; fi
pm2_ delete crash >/dev/null 2>&1

t_case "a repository that cannot be cloned is exit 2 (retried); the ecosystem is missing: exit 3"
if ! mod_run "$R" node app_dir=/srv/other repo_url="file://$T/nothing.git" && [ "$(mod_exit "$R" node)" = 2 ] &&
	[ "$(mod_attempts "$R" node)" = 3 ] && mod_lastlog "$R" node | grep -q 'git clone of file://.* failed' &&
	mod_files_reset && rm -f "$R/etc/firstboot/node/apps.env.js" && ! mod_run "$R" node && [ "$(mod_exit "$R" node)" = 3 ] &&
	mod_lastlog "$R" node | grep -q 'apps.env.js is missing'; then t_pass; else t_fail "exit $(mod_exit "$R" node): $(mod_lastlog "$R" node | tail -n 2)"; fi

t_case "a link out of the root where node writes (the ecosystem's folder, the app's folder): exit 3, nothing written outside"
mkdir -p "$T/outside"
mv "$R/home/deploy/.pm2-apps" "$T/pm2-apps.saved"
ln -s "$T/outside" "$R/home/deploy/.pm2-apps"
ln -s "$T/outside" "$R/srv/linked"
mod_files_reset
mod_file "$T/b3/files/etc/firstboot/node/ecosystem.config.js" /etc/firstboot/node/ecosystem.config.js 0600
mod_file "$T/b3/files/etc/firstboot/node/apps.env.js" /etc/firstboot/node/apps.env.js 0600
mod_reset_calls
if ! mod_run "$R" node app_dir=/srv/app && [ "$(mod_exit "$R" node)" = 3 ] &&
	mod_lastlog "$R" node | grep -q '/home/deploy/.pm2-apps: a link on the way leads out of the root: refused' &&
	! mod_run "$R" node app_dir=/srv/linked/app repo_url="file://$T/repo.git" && [ "$(mod_exit "$R" node)" = 3 ] &&
	mod_lastlog "$R" node | grep -q '/srv/linked/app: a link on the way leads out of the root: refused' &&
	[ -z "$(ls -A "$T/outside")" ] && [ ! -e "$R$T/outside" ] && mod_not_called '^pm2 startOrReload' && mod_not_called '^git clone'; then t_pass; else
	t_fail "exit $(mod_exit "$R" node): $(mod_lastlog "$R" node | tail -n 2); outside: $(ls -A "$T/outside")"
fi
rm -f "$R/home/deploy/.pm2-apps" "$R/srv/linked"
mv "$T/pm2-apps.saved" "$R/home/deploy/.pm2-apps"

# ---- private repositories: a deploy key over ssh, a token over https ----

# Debian's sshd on 127.0.0.1 in a private mount namespace whose /run
# holds the privilege separation folder it requires; it lets in the
# deploy key (as root: runuser is faked to run as this test's user).
K=$T/ssh
mkdir -p "$K"
for k in host deploy other; do ssh-keygen -q -t ed25519 -N '' -C "$k" -f "$K/$k"; done
cp "$K/deploy.pub" "$K/authorized_keys"
sshd_start() {
	local i
	for ((i = 0; i < 5; i++)); do
		SSH_PORT=$(free_port) || return 1
		printf '%s\n' "ListenAddress 127.0.0.1" "Port $SSH_PORT" "HostKey $K/host" "AuthorizedKeysFile $K/authorized_keys" \
			"PidFile $K/sshd.pid" "StrictModes no" "UsePAM no" "PasswordAuthentication no" \
			"KbdInteractiveAuthentication no" "PermitRootLogin prohibit-password" >"$K/sshd_config"
		# shellcheck disable=SC2016 # $1 is the inner shell's
		unshare --mount --propagation private -- sh -c 'mount -t tmpfs none /run && mkdir /run/sshd && exec /usr/sbin/sshd -D -e -f "$1"' \
			sh "$K/sshd_config" 2>>"$K/sshd.log" &
		SSHD_PID=$!
		_pids+=("$SSHD_PID")
		wait_for 10 grep -q "Server listening on 127.0.0.1 port $SSH_PORT" "$K/sshd.log" && return 0
		kill "$SSHD_PID" 2>/dev/null
	done
	return 1
}
if ! sshd_start; then
	echo "not ok - sshd starts on 127.0.0.1: $(tail -n 3 "$K/sshd.log")"
	exit 1
fi
KH="[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1-2 "$K/host.pub")"
KH_OTHER="[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1-2 "$K/other.pub")"
KEY=$(cat "$K/deploy")
SSH_URL=ssh://root@127.0.0.1:$SSH_PORT$T/repo.git
head=$(git -C "$W" rev-parse HEAD)
# rev DIR: the commit checked out in the root's DIR (nothing when DIR is
# not a clone: git would look in the folders above, up to this repository).
rev() { [ -e "$R$1/.git" ] && git -c safe.directory='*' -C "$R$1" rev-parse HEAD 2>/dev/null; }

# (crash, started by the module, was deleted by hand: the run after finds
# it gone from PM2's list and deletes nothing. The log is read whole
# before grep: its line is near the top of a long log, and grep -q
# leaving early would end the writer on SIGPIPE, a failure under
# pipefail.)
t_case "deploy_key: 0600 in the deploy user's ~/.ssh, ssh with StrictHostKeyChecking=yes against ssh_known_hosts: cloned"
mod_reset_calls
if mod_run "$R" node app_dir=/srv/keyed repo_url="$SSH_URL" deploy_key="$KEY" ssh_known_hosts="$KH" &&
	[ "$(rev /srv/keyed)" = "$head" ] && [ -f "$R/srv/keyed/server.js" ] && mod_not_called '^pm2 delete' &&
	grep -q "crash, removed from the ecosystem, is not in PM2's list any more" <<<"$(mod_lastlog "$R" node)" && cmp -s "$R/home/deploy/.ssh/firstboot_deploy_key" "$K/deploy" &&
	[ "$(stat -c '%a %u' "$R/home/deploy/.ssh/firstboot_deploy_key")" = "600 1000" ] &&
	[ "$(stat -c '%a %u' "$R/home/deploy/.ssh")" = "700 1000" ] &&
	[ "$(cat "$R/home/deploy/.ssh/firstboot_known_hosts")" = "$KH" ] &&
	grep -q "Accepted publickey for root from 127.0.0.1.* ED25519" "$K/sshd.log" &&
	mod_no_secrets "$R" "$(sed -n 2p "$K/deploy")"; then t_pass; else
	t_fail "exit $(mod_exit "$R" node): $(mod_lastlog "$R" node | tail -n 3)"
fi

t_case "deploy_key with a known host key that is not the server's: ssh refuses, exit 2, nothing cloned; ssh without ssh_known_hosts, a password or a token in repo_url: exit 1"
if ! mod_run "$R" node app_dir=/srv/keyed2 repo_url="$SSH_URL" deploy_key="$KEY" ssh_known_hosts="$KH_OTHER" &&
	[ "$(mod_exit "$R" node)" = 2 ] && mod_lastlog "$R" node | grep -q 'Host key verification failed' &&
	[ -z "$(rev /srv/keyed2)" ] &&
	! mod_exec "$R" node repo_url="$SSH_URL" deploy_key="$KEY" && grep -q 'ssh_known_hosts' "$MOD_ERR" &&
	! mod_exec "$R" node repo_url="https://x-access-token:abc@git.example/a.git" && grep -q 'deploy_token' "$MOD_ERR" &&
	! mod_exec "$R" node repo_url="https://ghp_tok3n@git.example/a.git" && grep -q 'must not hold a user, password or token' "$MOD_ERR" &&
	! grep -q ghp_tok3n "$MOD_ERR"; then t_pass; else
	t_fail "exit $(mod_exit "$R" node): $(mod_lastlog "$R" node | tail -n 3); $(cat "$MOD_ERR")"
fi

# A git server over HTTPS (git http-backend) that wants the token as the
# password of x-access-token and takes the process list on each request.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/tls.key" -out "$T/tls.pem" \
	-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
mkdir -p "$T/git-srv"
git clone -q --bare "$T/repo.git" "$T/git-srv/shop.git"
TOKEN=tok_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && printf '%s' "$TOKEN" >"$T/token")
git_port=
start_peer git git-https.py --cert "$T/tls.pem" --key "$T/tls.key" --root "$T/git-srv" --token-file "$T/token" \
	--record "$T/git.rec" --ps "$T/git.ps"

t_case "deploy_token: git's askpass gets it from the environment: in no command line, log, status.json, readable file, .git/config or the apps' environment"
mod_reset_calls
if mod_run "$R" node app_dir=/srv/tokened repo_url="https://127.0.0.1:$git_port/shop.git" deploy_token="$TOKEN" &&
	[ "$(rev /srv/tokened)" = "$head" ] && [ -f "$R/srv/tokened/server.js" ] && grep -q '"auth": true' "$T/git.rec" && [ -s "$T/git.ps" ] &&
	! grep -qF "$TOKEN" "$T/git.ps" "$R/srv/tokened/.git/config" && mod_called '^pm2 startOrReload' &&
	! pm2_ jlist 2>/dev/null | grep -qF "$TOKEN" && ! grep -qF "$TOKEN" "$PM2_HOME/dump.pm2" &&
	mod_no_secrets "$R" "$TOKEN"; then t_pass; else
	t_fail "exit $(mod_exit "$R" node): $(mod_lastlog "$R" node | tail -n 3); in ps: $(grep -cF "$TOKEN" "$T/git.ps")"
fi

t_case "a wrong deploy_token: refused by the server, exit 2, nothing cloned, the token in no log"
if ! mod_run "$R" node app_dir=/srv/tokened2 repo_url="https://127.0.0.1:$git_port/shop.git" deploy_token="bad$TOKEN" &&
	[ "$(mod_exit "$R" node)" = 2 ] && [ -z "$(rev /srv/tokened2)" ] && grep -q '"auth": false' "$T/git.rec" &&
	mod_no_secrets "$R" "bad$TOKEN"; then t_pass; else t_fail "exit $(mod_exit "$R" node): $(mod_lastlog "$R" node | tail -n 3)"; fi

t_case "a link in place of a folder node makes and hands to the deploy user (~/.pm2-apps): exit 3, what it points to keeps its owner and mode"
mkdir -p "$R/etc/victim"
chmod 0755 "$R/etc/victim"
mv "$R/home/deploy/.pm2-apps" "$T/pm2-apps.saved"
ln -s ../../etc/victim "$R/home/deploy/.pm2-apps"
mod_run "$R" node app_dir=/srv/app repo_url="file://$T/repo.git" build_script=build
rc=$(mod_exit "$R" node)
if [ "$rc" = 3 ] && mod_lastlog "$R" node | grep -q '.pm2-apps is a symbolic link: refused' &&
	[ "$(stat -c '%a %u' "$R/etc/victim")" = "755 0" ]; then t_pass; else t_fail "exit $rc: $(mod_lastlog "$R" node | tail -n 3)"; fi
rm "$R/home/deploy/.pm2-apps"
mv "$T/pm2-apps.saved" "$R/home/deploy/.pm2-apps"

stop_pm2
t_case "pm2 kill stopped everything this test started"
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then t_pass; else t_fail "port $PORT still answers"; fi
