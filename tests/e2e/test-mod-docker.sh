#!/bin/bash
# The docker module through the real agent on a temporary root, with the
# system commands replaced by recorders: installing Debian's engine or
# Docker CE from its repository, keeping an installed engine, daemon.json
# (merged), a second run that changes nothing, and the exit codes.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"

t_check "the docker manifest validates" "$FIRSTBOOT" validate "$TOP/modules/docker/manifest.yml"

fresh() {
	R=$T/$1
	mod_root "$R"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}"
}
daemon() { jq -r "$1" "$R/etc/docker/daemon.json"; }

t_case "a fresh server: docker.io and docker-compose, daemon.json, enabled, started, answering"
fresh r1
if mod_run "$R" docker &&
	mod_order '^dpkg-query ' '^apt-get .*update' '^apt-get .*install --no-install-recommends docker-compose docker.io$' \
		'^systemctl enable docker' '^systemctl start docker' '^docker info' '^docker compose version' &&
	[ "$(daemon '."log-opts"."max-size"')" = 10m ] && [ "$(daemon '."log-opts"."max-file"')" = 3 ] &&
	[ "$(daemon '."log-driver"')" = json-file ] && [ "$(daemon '."live-restore"')" = true ] &&
	[ "$(stat -c '%a %u' "$R/etc/docker/daemon.json")" = "644 0" ] &&
	grep -q 'done: Docker 20.10.24 (debian), compose: docker compose' "$(mod_log "$R" docker)"; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "a second run changes nothing: no installs, no restarts"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" docker && mod_not_called '^apt-get' && mod_not_called '^systemctl (start|restart|enable|reload) ' &&
	mod_called '^docker info' && [ "$(tree_snapshot "$R")" = "$before" ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "changed log settings restart the daemon without reinstalling"
mod_reset_calls
if mod_run "$R" docker log_max_size=50m log_max_file=5 data_root=/srv/docker &&
	mod_order '^systemctl restart docker' '^docker info' && mod_not_called '^apt-get' &&
	[ "$(daemon '."log-opts"."max-size"')" = 50m ] && [ "$(daemon '."data-root"')" = /srv/docker ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "live_restore alone changed: one systemctl reload docker (SIGHUP), no restart, nothing installed"
mod_reset_calls
if mod_run "$R" docker log_max_size=50m log_max_file=5 data_root=/srv/docker live_restore=false &&
	[ "$(mod_calls systemctl | grep -c '^systemctl reload docker$')" = 1 ] &&
	mod_not_called '^systemctl (restart|start|stop|enable) |^apt-get|^curl' && [ "$(daemon '."live-restore"')" = false ] &&
	[ "$(daemon '."data-root"')" = /srv/docker ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "an installed Docker CE is kept when debian is asked; an existing daemon.json is merged"
fresh r2
mod_installed docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
mod_active docker
mkdir -p "$R/etc/docker"
printf '{"dns": ["192.0.2.53"], "log-opts": {"max-size": "1g"}}\n' >"$R/etc/docker/daemon.json"
if mod_run "$R" docker edition=debian && mod_not_called '^apt-get' && mod_not_called '^curl' &&
	[ "$(daemon '.dns[0]')" = 192.0.2.53 ] && [ "$(daemon '."log-opts"."max-size"')" = 10m ] &&
	mod_called '^systemctl restart docker' && grep -q 'already installed; keeping it' "$(mod_log "$R" docker)"; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "Docker CE: the key, then the repository, then apt-get update and the packages"
fresh r3
mod_ctl curl <<'EOS'
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
printf -- '-----BEGIN PGP PUBLIC KEY BLOCK-----\nxyz\n-----END PGP PUBLIC KEY BLOCK-----\n' >"$out"
EOS
if mod_run "$R" docker edition=ce ce_repo_url=https://mirror.example.org/docker &&
	mod_order '^curl .*https://mirror.example.org/docker/gpg' '^apt-get .*update' \
		'^apt-get .*install --no-install-recommends containerd.io docker-buildx-plugin docker-ce docker-ce-cli docker-compose-plugin$' \
		'^systemctl start docker' &&
	[ "$(cat "$R/etc/apt/sources.list.d/docker.list")" = "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://mirror.example.org/docker bookworm stable" ] &&
	[ "$(stat -c %a "$R/etc/apt/keyrings/docker.asc")" = 644 ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "Docker CE: a failed key download is exit 2 (retried) and leaves no repository behind"
fresh r4
mod_fail curl 22
if ! mod_run "$R" docker edition=ce && [ "$(mod_exit "$R" docker)" = 2 ] && [ "$(mod_attempts "$R" docker)" = 3 ] &&
	[ ! -e "$R/etc/apt/sources.list.d/docker.list" ] && ! compgen -G "$R/etc/apt/keyrings/*" >/dev/null; then t_pass; else
	t_fail "exit $(mod_exit "$R" docker)"
fi

t_case "Docker CE: a download that is not a key (a captive portal's page) is exit 2"
mod_ctl_reset
mod_ctl curl <<'EOS'
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
echo '<html>login</html>' >"$out"
EOS
if ! mod_run "$R" docker edition=ce && [ "$(mod_exit "$R" docker)" = 2 ] && [ ! -e "$R/etc/apt/keyrings/docker.asc" ] &&
	grep -q 'is not a PGP public key' "$(mod_log "$R" docker)"; then t_pass; else t_fail "exit $(mod_exit "$R" docker)"; fi

t_case "apt-get install failing: exit 2, retried"
fresh r5
mod_fail apt-get 100 'install'
if ! mod_run "$R" docker && [ "$(mod_exit "$R" docker)" = 2 ] && [ "$(mod_attempts "$R" docker)" = 3 ] &&
	mod_not_called '^systemctl'; then t_pass; else t_fail "exit $(mod_exit "$R" docker)"; fi

t_case "a daemon that never answers: exit 3 after wait_seconds"
fresh r6
mod_fail docker 1 '^info'
if ! mod_run "$R" docker wait_seconds=2 && [ "$(mod_exit "$R" docker)" = 3 ] && [ "$(mod_calls docker | grep -c '^docker info')" = 2 ] &&
	grep -q 'does not answer after 2 s' "$(mod_log "$R" docker)"; then t_pass; else t_fail "exit $(mod_exit "$R" docker)"; fi

t_case "no compose at all: exit 3"
fresh r7
mod_fail docker 1 '^compose'
mod_fail docker-compose 127
if ! mod_run "$R" docker && [ "$(mod_exit "$R" docker)" = 3 ]; then t_pass; else t_fail "exit $(mod_exit "$R" docker)"; fi

t_case "a daemon.json that is not JSON is not overwritten: exit 3"
fresh r8
mkdir -p "$R/etc/docker"
echo '{broken' >"$R/etc/docker/daemon.json"
if ! mod_run "$R" docker && [ "$(mod_exit "$R" docker)" = 3 ] && [ "$(cat "$R/etc/docker/daemon.json")" = '{broken' ]; then t_pass; else
	t_fail "exit $(mod_exit "$R" docker)"
fi

t_case "users: an unknown user is exit 1; a known one joins the docker group (created when missing)"
fresh r9
if ! mod_run "$R" docker users=deploy && [ "$(mod_exit "$R" docker)" = 1 ] && mod_not_called '^apt-get'; then
	echo 'deploy:x:1000:1000::/home/deploy:/bin/bash' >>"$R/etc/passwd"
	echo 'deploy:x:1000:' >>"$R/etc/group"
	mod_reset_calls
	if mod_run "$R" docker users=deploy && mod_order '^groupadd --prefix '"$R"' --system docker' \
		'^usermod --prefix '"$R"' --append --groups docker deploy' && grep -q '^docker:x:[0-9]*:deploy$' "$R/etc/group"; then
		mod_reset_calls
		if mod_run "$R" docker users=deploy && mod_not_called '^(usermod|groupadd)'; then t_pass; else t_fail "second run"; fi
	else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi
else t_fail "exit $(mod_exit "$R" docker)"; fi

t_case "docker.io installed without compose: only docker-compose is added"
fresh r10
mod_installed docker.io
mod_active docker
mod_fail docker 1 '^compose'
if mod_run "$R" docker && mod_called '^apt-get .*install --no-install-recommends docker-compose$' &&
	mod_not_called '^apt-get .*install .*docker\.io' && mod_called '^docker-compose version' &&
	mod_lastlog "$R" docker | grep -q 'compose: docker-compose$'; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "reprovision: plan shows 'requires reprovisioning: data_root' (exit 2), apply refuses it (exit 1) and nothing runs; log_max_size is applied"
fresh rp1
MOD_INSTANCE="i-docker"
mod_run "$R" docker data_root=/srv/docker-a
rc1=$?
mod_bundle docker data_root=/srv/docker-b
mod_reset_calls
PATH="$MOD_REC/bin:$PATH" "$FIRSTBOOT" plan --root "$R" --user-data "$MOD_BUNDLE" >"$T/plan.out" 2>&1
prc=$?
PATH="$MOD_REC/bin:$PATH" "$FIRSTBOOT" apply --root "$R" --user-data "$MOD_BUNDLE" >"$T/apply.out" 2>&1
arc=$?
mod_bundle docker data_root=/srv/docker-a log_max_size=20m
PATH="$MOD_REC/bin:$PATH" "$FIRSTBOOT" apply --root "$R" --user-data "$MOD_BUNDLE" >"$T/apply2.out" 2>&1
arc2=$?
unset MOD_INSTANCE
if [ $rc1 = 0 ] && [ $prc = 2 ] && grep -qx '  run   docker: requires reprovisioning: data_root' "$T/plan.out" &&
	[ $arc = 1 ] && grep -q 'module docker: requires reprovisioning: data_root' "$T/apply.out" &&
	[ "$(daemon '."data-root"')" = /srv/docker-a ] && [ $arc2 = 0 ] && [ "$(_mod_status "$R" docker why)" = "inputs changed: log_max_size" ] &&
	[ "$(mod_calls systemctl | grep -c '^systemctl restart docker$')" = 1 ] && mod_not_called '^apt-get'; then t_pass; else
	t_fail "run $rc1 plan $prc apply $arc/$arc2: $(cat "$T/plan.out" "$T/apply.out" "$T/apply2.out" | tail -n 8)"
fi
