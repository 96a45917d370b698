#!/bin/bash
# The base module through the real agent on a temporary root, with the
# system commands replaced by recorders: what it calls and in what order,
# the files it writes, a second run that changes nothing, changed inputs,
# and the exit codes for bad input (1), failed installs (2, retried) and
# refused configurations (3).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"

t_check "the base manifest validates" "$FIRSTBOOT" validate "$TOP/modules/base/manifest.yml"

ssh-keygen -q -t ed25519 -N '' -C 'ops@example.org' -f "$T/key"
KEY=$(cat "$T/key.pub")

# fresh NAME: a root $T/NAME and recorders $T/NAME.rec on a running
# server (ssh active); ssh-keygen is the real one (it writes host keys
# under the root only).
fresh() {
	R=$T/$1
	mod_root "$R"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}" ss
	mod_passthrough ssh-keygen
	mod_active ssh
}

t_case "a fresh server: packages, user, firewall, then SSH, in that order"
fresh r1
if mod_run "$R" base ssh_authorized_keys="$KEY" packages="htop, tmux" firewall_ports="8080 60000:61000/udp" &&
	mod_order '^apt-get .*update' '^apt-get .*install .*openssh-server' '^useradd --prefix '"$R"' .*--groups sudo deploy$' \
		'^visudo -cf ' '^ufw default deny incoming' '^ufw limit 22/tcp' '^ufw allow 80/tcp' '^ufw allow 443/tcp' \
		'^ufw allow 8080/tcp' '^ufw allow 60000:61000/udp' '^ufw --force enable' '^sshd -t -f '"$R"'/etc/ssh/sshd_config' \
		'^systemctl reload ssh' '^fail2ban-client -c '"$R"'/etc/fail2ban --test' '^systemctl start fail2ban' &&
	mod_called '^apt-get .*install .*tmux' && mod_called '^apt-get .*install .*fail2ban' && mod_called '^apt-get .*install .*python3-systemd' &&
	mod_called '^ssh-keygen -A -f '"$R"'$' && mod_called '^systemctl enable apt-daily-upgrade.timer'; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "the files: sudoers 0440, .ssh 0700 and authorized_keys 0600 owned by deploy, the sshd drop-in first"
uid=$(awk -F: '$1 == "deploy" {print $3 ":" $4}' "$R/etc/passwd")
if [ -n "$uid" ] && [ "$(stat -c '%a %u:%g' "$R/home/deploy/.ssh")" = "700 $uid" ] &&
	[ "$(stat -c '%a %u:%g' "$R/home/deploy/.ssh/authorized_keys")" = "600 $uid" ] &&
	[ "$(cat "$R/home/deploy/.ssh/authorized_keys")" = "$KEY" ] &&
	[ "$(stat -c '%a' "$R/etc/sudoers.d/90-firstboot-deploy")" = 440 ] &&
	grep -qx 'deploy ALL=(ALL:ALL) NOPASSWD: ALL' "$R/etc/sudoers.d/90-firstboot-deploy" &&
	grep -qx 'PermitRootLogin no' "$R/etc/ssh/sshd_config.d/00-firstboot.conf" &&
	grep -qx 'PasswordAuthentication no' "$R/etc/ssh/sshd_config.d/00-firstboot.conf" &&
	grep -qx 'Port 22' "$R/etc/ssh/sshd_config.d/00-firstboot.conf" &&
	grep -qx 'backend = systemd' "$R/etc/fail2ban/jail.d/00-firstboot.local" &&
	grep -qx 'APT::Periodic::Unattended-Upgrade "1";' "$R/etc/apt/apt.conf.d/20auto-upgrades" &&
	grep -q '^sudo:x:27:deploy$' "$R/etc/group" && ls "$R"/etc/ssh/ssh_host_ed25519_key >/dev/null &&
	! compgen -G "$R/etc/*/*.fbtmp.*" >/dev/null; then t_pass; else t_fail "files"; fi

t_case "a second run changes nothing: no installs, no user changes, no reloads, no ufw"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" base ssh_authorized_keys="$KEY" packages="htop, tmux" firewall_ports="8080 60000:61000/udp" &&
	mod_not_called '^apt-get' && mod_not_called '^(useradd|usermod|ufw|visudo|sshd|ssh-keygen|fail2ban-client) ' &&
	mod_not_called '^systemctl (start|restart|reload|enable) ' && [ "$(tree_snapshot "$R")" = "$before" ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "a new SSH port is opened in ufw before sshd reloads; nothing is reinstalled"
mod_reset_calls
if mod_run "$R" base ssh_authorized_keys="$KEY" packages="htop, tmux" ssh_port=2222 firewall_ports="8080 60000:61000/udp" &&
	mod_order '^ufw limit 2222/tcp' '^sshd -t' '^systemctl reload ssh' '^ufw delete limit 22/tcp$' '^fail2ban-client' '^systemctl restart fail2ban' &&
	mod_not_called '^apt-get' && mod_not_called '^useradd' && grep -qx 'Port 2222' "$R/etc/ssh/sshd_config.d/00-firstboot.conf" &&
	grep -qx 'port = 2222' "$R/etc/fail2ban/jail.d/00-firstboot.local" &&
	! grep -q '^### tuple ### limit tcp 22 ' "$R/etc/ufw/user.rules" && grep -q '^### tuple ### limit tcp 2222 ' "$R/etc/ufw/user.rules"; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "a port taken out of firewall_ports: that rule deleted, nothing else (no reload, no install)"
mod_reset_calls
if mod_run "$R" base ssh_authorized_keys="$KEY" packages="htop, tmux" ssh_port=2222 firewall_ports="60000:61000/udp" &&
	[ "$(mod_calls ufw | tr '\n' ';')" = "ufw delete allow 8080/tcp;" ] &&
	mod_not_called '^apt-get|^systemctl (start|restart|reload|enable|stop|disable) |^(useradd|usermod|sshd|fail2ban-client) ' &&
	! grep -q '^### tuple ### allow tcp 8080 ' "$R/etc/ufw/user.rules" && grep -q '^### tuple ### allow udp 60000:61000 ' "$R/etc/ufw/user.rules"; then
	t_pass
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "firewall, fail2ban and unattended upgrades turned off: ufw disabled, fail2ban stopped and disabled, upgrades off; nothing installed or removed"
mod_reset_calls
if mod_run "$R" base ssh_authorized_keys="$KEY" packages="htop, tmux" ssh_port=2222 \
	firewall=false fail2ban=false unattended_upgrades=false &&
	mod_called '^ufw disable$' && mod_called '^systemctl disable --now fail2ban$' && grep -qx 'ENABLED=no' "$R/etc/ufw/ufw.conf" &&
	[ ! -e "$R/etc/fail2ban/jail.d/00-firstboot.local" ] && [ ! -e "$R/etc/apt/apt.conf.d/52firstboot-unattended-upgrades" ] &&
	grep -qx 'APT::Periodic::Unattended-Upgrade "0";' "$R/etc/apt/apt.conf.d/20auto-upgrades" &&
	mod_not_called '^apt-get|^systemctl (restart|reload) |^ufw (delete|allow|limit)'; then
	mod_reset_calls
	if mod_run "$R" base ssh_authorized_keys="$KEY" packages="htop, tmux" ssh_port=2222 \
		firewall=false fail2ban=false unattended_upgrades=false && mod_not_called '^ufw |^systemctl (disable|stop|start|restart|reload) '; then
		t_pass
	else t_fail "again: $(mod_calls "" | tr '\n' ';')"; fi
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "sshd -t refusing the configuration: exit 3, the previous drop-in kept, no reload"
mod_reset_calls
mod_fail sshd 255 '-t'
if ! mod_run "$R" base ssh_authorized_keys="$KEY" ssh_port=2200 && [ "$(mod_exit "$R" base)" = 3 ] &&
	[ "$(mod_attempts "$R" base)" = 1 ] && grep -qx 'Port 2222' "$R/etc/ssh/sshd_config.d/00-firstboot.conf" &&
	mod_not_called '^systemctl reload ssh' && grep -q 'sshd -t refused' "$(mod_log "$R" base)" &&
	mod_order '^ufw limit 2200/tcp' '^sshd -t' '^ufw delete limit 2200/tcp' && ! grep -q ' 2200 ' "$R/etc/ufw/user.rules"; then t_pass; else t_fail "exit $(mod_exit "$R" base)"; fi

t_case "visudo refusing the sudoers file: exit 3 and no sudoers file"
fresh r2
mod_fail visudo 1
if ! mod_run "$R" base ssh_authorized_keys="$KEY" && [ "$(mod_exit "$R" base)" = 3 ] &&
	[ ! -e "$R/etc/sudoers.d/90-firstboot-deploy" ] && ! compgen -G "$R/etc/sudoers.d/*" >/dev/null; then t_pass; else
	t_fail "exit $(mod_exit "$R" base)"
fi

t_case "apt-get install failing: exit 2, retried by the agent up to module_attempts"
fresh r3
mod_fail apt-get 100 '(^| )install '
if ! mod_run "$R" base ssh_authorized_keys="$KEY" && [ "$(mod_exit "$R" base)" = 2 ] &&
	[ "$(mod_attempts "$R" base)" = 3 ] && [ "$(mod_calls apt-get | grep -c ' install ')" = 3 ] &&
	mod_not_called '^useradd'; then t_pass; else t_fail "exit $(mod_exit "$R" base), attempts $(mod_attempts "$R" base)"; fi

t_case "apt-get failing once: the agent's second attempt succeeds"
fresh r4
mod_fail apt-get 100 '(^| )update' 1
if mod_run "$R" base ssh_authorized_keys="$KEY" && [ "$(mod_attempts "$R" base)" = 2 ] &&
	[ "$(mod_state "$R" base)" = "done" ]; then t_pass; else t_fail "attempts $(mod_attempts "$R" base)"; fi

t_case "bad input the manifest cannot see: exit 1, not retried, nothing installed"
fresh r5
ok=1
for keys in "not a key" "-----BEGIN OPENSSH PRIVATE KEY-----" "ssh-ed25519 !!!"; do
	mod_reset_calls
	if mod_run "$R" base ssh_authorized_keys="$keys" || [ "$(mod_exit "$R" base)" != 1 ] ||
		[ "$(mod_attempts "$R" base)" != 1 ] || mod_called '^apt-get'; then
		ok=0
		echo "  # keys '$keys': exit $(mod_exit "$R" base)"
	fi
done
grep -q 'line 1 is a private key' "$(mod_log "$R" base)" || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "bad keys accepted"; fi

t_case "no key anywhere: exit 1 rather than disabling root login with no way in"
if ! mod_run "$R" base && [ "$(mod_exit "$R" base)" = 1 ] && grep -q 'no SSH public key' "$(mod_log "$R" base)"; then t_pass; else
	t_fail "exit $(mod_exit "$R" base)"
fi

t_case "root's keys are used when none are given (without the provider's options)"
mkdir -p "$R/root/.ssh"
printf 'no-port-forwarding,command="echo '\''Please login as admin'\''" %s\n' "$KEY" >"$R/root/.ssh/authorized_keys"
if mod_run "$R" base && [ "$(cat "$R/home/deploy/.ssh/authorized_keys")" = "$KEY" ]; then t_pass; else t_fail "keys"; fi

t_case "bad input the manifest sees is refused by the agent before the module runs"
fresh r6
mod_reset_calls
if ! mod_run "$R" base ssh_authorized_keys="$KEY" deploy_user="Bad User" && grep -q "deploy_user" "$MOD_ERR" &&
	! mod_run "$R" base ssh_authorized_keys="$KEY" packages='htop;rm -rf /' && grep -q "packages" "$MOD_ERR" &&
	[ ! -s "$MOD_REC/calls.txt" ]; then t_pass; else t_fail "ran: $(cat "$MOD_ERR")"; fi

t_case "mysql_client: the client package chosen is installed; another value is refused by the agent and by the module"
fresh r6m
if mod_run "$R" base ssh_authorized_keys="$KEY" mysql_client=mariadb-client && mod_called '^apt-get .*install .*mariadb-client' &&
	mod_not_called 'default-mysql-client' && fresh r6n && mod_run "$R" base ssh_authorized_keys="$KEY" &&
	mod_not_called 'mysql-client|mariadb-client' && mod_reset_calls && ! mod_run "$R" base ssh_authorized_keys="$KEY" mysql_client=mysql-server &&
	grep -q mysql_client "$MOD_ERR" && ! mod_exec "$R" base ssh_authorized_keys="$KEY" MYSQL_CLIENT=mysql-server &&
	grep -q 'mysql_client must be' "$MOD_ERR"; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';') $(cat "$MOD_ERR")"; fi

t_case "the module checks its inputs itself too (run without the agent)"
if ! mod_exec "$R" base ssh_authorized_keys="$KEY" firewall_ports="70000" && [ "$(grep -c . "$MOD_REC/calls.txt")" = 0 ] &&
	grep -q "out of 1-65535" "$MOD_ERR"; then t_pass; else t_fail "$(cat "$MOD_ERR")"; fi

t_case "redis_client and yq: Debian's redis-tools (redis-cli) and yq are installed; off by default; not booleans are refused"
fresh r7
if mod_run "$R" base ssh_authorized_keys="$KEY" redis_client=true yq=true &&
	mod_called '^apt-get .*install .*redis-tools' && mod_called '^apt-get .*install .* yq( |$)' &&
	mod_reset_calls && mod_run "$R" base ssh_authorized_keys="$KEY" redis_client=true yq=true && mod_not_called '^apt-get' &&
	fresh r7n && mod_run "$R" base ssh_authorized_keys="$KEY" && mod_called '^apt-get .*install ' &&
	mod_not_called 'redis-tools| yq( |$)' && mod_reset_calls &&
	! mod_run "$R" base ssh_authorized_keys="$KEY" redis_client=yes && grep -q redis_client "$MOD_ERR" &&
	! mod_exec "$R" base ssh_authorized_keys="$KEY" YQ=1 && grep -q 'yq must be true or false' "$MOD_ERR" &&
	! mod_exec "$R" base ssh_authorized_keys="$KEY" REDIS_CLIENT=on && grep -q 'redis_client must be true or false' "$MOD_ERR" &&
	mod_not_called '^apt-get'; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';') $(cat "$MOD_ERR")"; fi

t_case "firewall_ports: a port gone from the list is closed on the next run; SSH, 80, 443 and rules base did not add stay"
fresh r8
mkdir -p "$R/etc/ufw"
echo '### tuple ### allow tcp 7000 0.0.0.0/0 any 0.0.0.0/0 in' >"$R/etc/ufw/user.rules"
hex=$(printf 'firstboot firewall_ports' | od -An -v -tx1 | tr -d ' \n')
if mod_run "$R" base ssh_authorized_keys="$KEY" firewall_ports="8080 9000/udp 7000 443 3000:3005" &&
	mod_called '^ufw allow 8080/tcp comment firstboot firewall_ports$' && mod_called '^ufw allow 9000/udp comment ' &&
	mod_not_called '^ufw allow 7000/tcp' && mod_not_called '^ufw delete' &&
	grep -qx "### tuple ### allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in comment=$hex" "$R/etc/ufw/user.rules" &&
	mod_reset_calls && mod_run "$R" base ssh_authorized_keys="$KEY" firewall_ports="8080" &&
	mod_called '^ufw delete allow 9000/udp$' && mod_called '^ufw delete allow 3000:3005/tcp$' &&
	[ "$(mod_calls ufw | grep -c .)" = 2 ] && grep -q 'closed 9000/udp' "$(mod_log "$R" base)" &&
	grep -q ' allow tcp 8080 ' "$R/etc/ufw/user.rules" && grep -q ' allow tcp 7000 ' "$R/etc/ufw/user.rules" &&
	grep -q ' allow tcp 443 ' "$R/etc/ufw/user.rules" && grep -q ' limit tcp 22 ' "$R/etc/ufw/user.rules" &&
	! grep -qE ' (9000|3000:3005) ' "$R/etc/ufw/user.rules" &&
	mod_reset_calls && mod_run "$R" base ssh_authorized_keys="$KEY" firewall_ports="8080" && mod_not_called '^ufw'; then t_pass; else
	t_fail "calls: $(mod_calls "" | grep ufw | tr '\n' ';') rules: $(cat "$R/etc/ufw/user.rules")"
fi

t_case "ufw delete failing: exit 3"
mod_reset_calls
mod_fail ufw 1 '^delete '
if ! mod_run "$R" base ssh_authorized_keys="$KEY" firewall_ports="" && [ "$(mod_exit "$R" base)" = 3 ] &&
	grep -q 'ufw delete allow 8080/tcp failed' "$(mod_log "$R" base)"; then t_pass; else t_fail "exit $(mod_exit "$R" base)"; fi

t_case "the ufw recorder: a rule differing only in its action replaces the one there, as ufw 0.36 does"
mkdir -p "$T/ufwr/etc/ufw"
echo '### tuple ### limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in' >"$T/ufwr/etc/ufw/user.rules"
if out=$(FIRSTBOOT_ROOT=$T/ufwr "$MOD_REC/bin/ufw" allow 22/tcp comment "firstboot firewall_ports") &&
	[ "$out" = "Rule updated" ] && [ "$(grep -c . "$T/ufwr/etc/ufw/user.rules")" = 1 ] &&
	grep -qx "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=$hex" "$T/ufwr/etc/ufw/user.rules"; then t_pass; else
	t_fail "$out: $(cat "$T/ufwr/etc/ufw/user.rules")"
fi

t_case "firewall_ports holding the SSH port: left out (the limit rule stays), also while sshd moves; added once it is no longer SSH's"
fresh r9
if mod_run "$R" base ssh_authorized_keys="$KEY" firewall_ports="22 8080" && mod_not_called '^ufw allow 22/tcp' &&
	grep -q '^### tuple ### limit tcp 22 ' "$R/etc/ufw/user.rules" && ! grep -q ' allow tcp 22 ' "$R/etc/ufw/user.rules" &&
	mod_reset_calls && mod_run "$R" base ssh_authorized_keys="$KEY" firewall_ports="22 8080" && mod_not_called '^ufw' &&
	mod_reset_calls && mod_run "$R" base ssh_authorized_keys="$KEY" ssh_port=2222 firewall_ports="22 8080" &&
	mod_order '^ufw limit 2222/tcp' '^systemctl reload ssh' '^ss -Hltnp sport = :2222$' '^ufw delete limit 22/tcp$' '^ufw allow 22/tcp comment ' &&
	grep -q '^### tuple ### allow tcp 22 .* comment=' "$R/etc/ufw/user.rules" && ! grep -q ' limit tcp 22 ' "$R/etc/ufw/user.rules" &&
	mod_reset_calls && mod_run "$R" base ssh_authorized_keys="$KEY" ssh_port=2222 firewall_ports="22 8080" && mod_not_called '^ufw'; then
	t_pass
else t_fail "calls: $(mod_calls "" | grep -v '^systemctl is-' | tr '\n' ';') rules: $(cat "$R/etc/ufw/user.rules")"; fi

t_case "a firewall_ports rule an older base let replace SSH's limit rule: kept until sshd has moved, then closed"
fresh r9b
mod_run "$R" base ssh_authorized_keys="$KEY" >/dev/null
sed -i "s|^### tuple ### limit tcp 22 .*|### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=$hex|" "$R/etc/ufw/user.rules"
mod_reset_calls
if mod_run "$R" base ssh_authorized_keys="$KEY" ssh_port=2222 firewall_ports="" &&
	mod_order '^ufw limit 2222/tcp' '^systemctl reload ssh' '^ss ' '^ufw delete allow 22/tcp$' &&
	[ "$(mod_calls ufw | grep -c '^ufw delete')" = 1 ] && ! grep -q ' tcp 22 ' "$R/etc/ufw/user.rules"; then t_pass; else
	t_fail "calls: $(mod_calls "" | grep -v '^systemctl is-' | tr '\n' ';')"
fi

t_case "sshd not listening on the new port after the reload: exit 3, the old drop-in back, old port's rule and state kept; then it moves"
R=$T/r9
mod_reset_calls
mod_ctl ss <<<'exit 0'
state=$R/var/lib/firstboot-stack/state/base-ssh-port
if ! mod_run "$R" base ssh_authorized_keys="$KEY" ssh_port=2300 firewall_ports="22 8080" && [ "$(mod_exit "$R" base)" = 3 ] &&
	[ "$(mod_attempts "$R" base)" = 1 ] && mod_order '^systemctl reload ssh' '^ss -Hltnp sport = :2300$' '^systemctl restart ssh$' &&
	mod_not_called '^ufw delete' && grep -q '^### tuple ### limit tcp 2222 ' "$R/etc/ufw/user.rules" &&
	[ "$(cat "$state")" = 2222 ] && grep -qx 'Port 2222' "$R/etc/ssh/sshd_config.d/00-firstboot.conf" &&
	grep -q 'not active and listening on port 2300.*port 2222 stays open' "$(mod_log "$R" base)"; then
	mod_ctl_reset
	mod_reset_calls
	if mod_run "$R" base ssh_authorized_keys="$KEY" ssh_port=2300 firewall_ports="22 8080" &&
		mod_order '^systemctl reload ssh' '^ss -Hltnp sport = :2300$' '^ufw delete limit 2222/tcp$' &&
		! grep -q ' tcp 2222 ' "$R/etc/ufw/user.rules" && [ "$(cat "$state")" = 2300 ]; then t_pass; else
		t_fail "again: $(mod_calls "" | grep -v '^systemctl is-' | tr '\n' ';')"
	fi
else t_fail "exit $(mod_exit "$R" base): $(mod_calls "" | grep -v '^systemctl is-' | sort | uniq -c | tr '\n' ';')"; fi

t_case "another program holds the new SSH port (sshd cannot bind it): exit 3, the old drop-in back, the old port's rule and state kept"
# ss lists a listener on 2500, not sshd's: the old check (any listener)
# took it for sshd having moved and deleted 2300's rule.
echo 2500 >"$MOD_REC/state/listen"
mod_reset_calls
if ! mod_run "$R" base ssh_authorized_keys="$KEY" ssh_port=2500 firewall_ports="22 8080" && [ "$(mod_exit "$R" base)" = 3 ] &&
	mod_order '^systemctl reload ssh' '^ss -Hltnp sport = :2500$' '^systemctl restart ssh$' &&
	mod_not_called '^ufw delete' && grep -q '^### tuple ### limit tcp 2300 ' "$R/etc/ufw/user.rules" &&
	[ "$(cat "$state")" = 2300 ] && grep -qx 'Port 2300' "$R/etc/ssh/sshd_config.d/00-firstboot.conf"; then t_pass; else
	t_fail "exit $(mod_exit "$R" base): $(mod_calls "" | grep -v '^systemctl is-' | tr '\n' ';')"
fi
rm -f "$MOD_REC/state/listen"

t_case "sshd inactive after the reload: exit 3 too"
mod_reset_calls
mod_fail systemctl 3 '^is-active --quiet ssh$'
if ! mod_run "$R" base ssh_authorized_keys="$KEY" ssh_port=2400 firewall_ports="22 8080" && [ "$(mod_exit "$R" base)" = 3 ] &&
	mod_not_called '^ufw delete' && [ "$(cat "$state")" = 2300 ] && grep -qx 'Port 2300' "$R/etc/ssh/sshd_config.d/00-firstboot.conf"; then t_pass; else
	t_fail "exit $(mod_exit "$R" base): $(mod_calls ufw | tr '\n' ';')"
fi
mod_ctl_reset

t_case "fail2ban=false with disable failing: exit 3 and the jail kept, so the next run disables it again"
fresh r10
mod_run "$R" base ssh_authorized_keys="$KEY" >/dev/null
mod_reset_calls
mod_fail systemctl 1 '^disable --now fail2ban$' 1
jail=$R/etc/fail2ban/jail.d/00-firstboot.local
if ! mod_run "$R" base ssh_authorized_keys="$KEY" fail2ban=false && [ "$(mod_exit "$R" base)" = 3 ] && [ -f "$jail" ] &&
	mod_reset_calls && mod_run "$R" base ssh_authorized_keys="$KEY" fail2ban=false &&
	mod_called '^systemctl disable --now fail2ban$' && [ ! -e "$jail" ]; then t_pass; else t_fail "exit $(mod_exit "$R" base)"; fi

t_case "links out of the root: fail2ban=false and unattended_upgrades=false remove nothing outside it"
fresh r11
mod_run "$R" base ssh_authorized_keys="$KEY" >/dev/null
mkdir -p "$T/outside/jail.d"
echo keep >"$T/outside/jail.d/00-firstboot.local"
echo keep >"$T/outside/52firstboot-unattended-upgrades"
rm -rf "$R/etc/fail2ban"
ln -s "$T/outside" "$R/etc/fail2ban"
ln -sfn "$T/outside/52firstboot-unattended-upgrades" "$R/etc/apt/apt.conf.d/52firstboot-unattended-upgrades"
mod_reset_calls
if mod_run "$R" base ssh_authorized_keys="$KEY" fail2ban=false unattended_upgrades=false &&
	[ "$(cat "$T/outside/jail.d/00-firstboot.local")" = keep ] && [ "$(cat "$T/outside/52firstboot-unattended-upgrades")" = keep ] &&
	mod_not_called '^systemctl disable --now fail2ban'; then t_pass; else t_fail "exit $(mod_exit "$R" base)"; fi

t_case "the deploy user's ~/.ssh a link (out of the root, or ../../etc): refused, exit 3, nothing chowned or chmodded"
fresh r12
mod_run "$R" base ssh_authorized_keys="$KEY" >/dev/null
mkdir -p "$T/outside-ssh"
chmod 0755 "$T/outside-ssh" "$R/etc"
before_out=$(stat -c '%a %u:%g' "$T/outside-ssh")
before_etc=$(stat -c '%a %u:%g' "$R/etc")
rm -rf "$R/home/deploy/.ssh"
ln -s "$T/outside-ssh" "$R/home/deploy/.ssh"
ok=1
mod_run "$R" base ssh_authorized_keys="$KEY" && ok=0
[ "$(mod_exit "$R" base)" = 3 ] && grep -q "/home/deploy/.ssh is a symbolic link" "$MOD_ERR" || ok=0
ln -sfn ../../etc "$R/home/deploy/.ssh" # relative: followed, it is the root's /etc, never the host's
mod_run "$R" base ssh_authorized_keys="$KEY" && ok=0
[ "$(mod_exit "$R" base)" = 3 ] || ok=0
if [ $ok = 1 ] && [ "$(stat -c '%a %u:%g' "$T/outside-ssh")" = "$before_out" ] &&
	[ "$(stat -c '%a %u:%g' "$R/etc")" = "$before_etc" ] && [ ! -e "$T/outside-ssh/authorized_keys" ] &&
	[ ! -e "$R/etc/authorized_keys" ]; then t_pass; else t_fail "exit $(mod_exit "$R" base): $(tail -n 3 "$MOD_ERR" 2>/dev/null)"; fi

t_case "sshd_config a link out of the root (to this test's folder, relative): exit 3 naming it, the file out of the root neither read nor rewritten, the link left, no sshd -t"
fresh r13
mkdir -p "$T/outside-sshd"
printf 'Port 22\n# out of the root\n' >"$T/outside-sshd/sshd_config"
chmod 0600 "$T/outside-sshd/sshd_config"
rm "$R/etc/ssh/sshd_config"
ln -s ../../../outside-sshd/sshd_config "$R/etc/ssh/sshd_config"
mod_run "$R" base ssh_authorized_keys="$KEY"
rc=$(mod_exit "$R" base)
if [ "$rc" = 3 ] && mod_lastlog "$R" base | grep -q '/etc/ssh/sshd_config is missing or not a regular file inside the root' &&
	[ -L "$R/etc/ssh/sshd_config" ] && [ "$(cat "$T/outside-sshd/sshd_config")" = "$(printf 'Port 22\n# out of the root')" ] &&
	[ "$(stat -c %a "$T/outside-sshd/sshd_config")" = 600 ] && mod_not_called '^sshd -t'; then t_pass; else
	t_fail "exit $rc: $(mod_lastlog "$R" base | tail -n 2)"
fi

t_case "sshd_config a link inside the root (relative): the file it names gets the Include line, the link stays, sshd -t checks that file"
rm "$R/etc/ssh/sshd_config"
printf 'Port 22\n' >"$R/etc/ssh/sshd_config.real"
ln -s sshd_config.real "$R/etc/ssh/sshd_config"
mod_reset_calls
if mod_run "$R" base ssh_authorized_keys="$KEY" && [ -L "$R/etc/ssh/sshd_config" ] &&
	[ "$(head -n 1 "$R/etc/ssh/sshd_config.real")" = "Include /etc/ssh/sshd_config.d/*.conf" ] &&
	mod_called "^sshd -t -f $R/etc/ssh/sshd_config.real\$"; then t_pass; else
	t_fail "exit $(mod_exit "$R" base): $(mod_lastlog "$R" base | tail -n 2)"
fi
