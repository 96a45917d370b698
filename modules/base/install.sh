#!/bin/bash
# base: packages, the deploy user, SSH hardening, ufw, fail2ban and
# unattended upgrades. Run by firstboot under the module contract: inputs
# in the environment, every file under $FIRSTBOOT_ROOT, commands from PATH,
# services through systemctl. Exit 1 bad input, 2 a package install
# failed (retried), 3 a configuration was refused. A second run with the
# same inputs changes nothing.
set -euo pipefail
umask 022

# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

PACKAGES=${PACKAGES:-}
MYSQL_CLIENT=${MYSQL_CLIENT:-none}
REDIS_CLIENT=${REDIS_CLIENT:-false}
YQ=${YQ:-false}
DEPLOY_USER=${DEPLOY_USER:-deploy}
SSH_AUTHORIZED_KEYS=${SSH_AUTHORIZED_KEYS:-}
SSH_PORT=${SSH_PORT:-22}
FIREWALL=${FIREWALL:-true}
FIREWALL_PORTS=${FIREWALL_PORTS:-}
FAIL2BAN=${FAIL2BAN:-true}
UNATTENDED_UPGRADES=${UNATTENDED_UPGRADES:-true}
AUTO_REBOOT=${AUTO_REBOOT:-false}
AUTO_REBOOT_TIME=${AUTO_REBOOT_TIME:-03:30}

# ---- inputs -------------------------------------------------------------

bool() {
	case $2 in
	true | false) ;;
	*) die 1 "$1 must be true or false" ;;
	esac
}
bool firewall "$FIREWALL"
bool fail2ban "$FAIL2BAN"
bool unattended_upgrades "$UNATTENDED_UPGRADES"
bool auto_reboot "$AUTO_REBOOT"
bool redis_client "$REDIS_CLIENT"
bool yq "$YQ"
[[ $DEPLOY_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die 1 "deploy_user must be a user name like deploy"
[ "$DEPLOY_USER" != root ] || die 1 "deploy_user cannot be root"
if ! [[ $SSH_PORT =~ ^[0-9]+$ ]] || [ "$SSH_PORT" -lt 1 ] || [ "$SSH_PORT" -gt 65535 ]; then
	die 1 "ssh_port must be a port number"
fi
[[ $AUTO_REBOOT_TIME =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] || die 1 "auto_reboot_time must be HH:MM"

extra_pkgs=()
for p in ${PACKAGES//,/ }; do
	[[ $p =~ ^[a-z0-9][a-z0-9+.-]*$ ]] || die 1 "packages: '$p' is not a Debian package name"
	extra_pkgs+=("$p")
done
case $MYSQL_CLIENT in
none) ;;
default-mysql-client | mariadb-client) extra_pkgs+=("$MYSQL_CLIENT") ;;
*) die 1 "mysql_client must be none, default-mysql-client or mariadb-client" ;;
esac
# redis-tools ships /usr/bin/redis-cli; Debian's yq is kislyuk's (Python,
# jq's filters; it depends on jq).
[ "$REDIS_CLIENT" = true ] && extra_pkgs+=(redis-tools)
[ "$YQ" = true ] && extra_pkgs+=(yq)

# Firewall rules as "PORT/PROTO"; a range is LOW:HIGH.
fw_rules=()
for p in ${FIREWALL_PORTS//,/ }; do
	[[ $p =~ ^([0-9]+)(:([0-9]+))?(/(tcp|udp))?$ ]] || die 1 "firewall_ports: '$p' is not PORT, PORT/PROTO or LOW:HIGH/PROTO"
	lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[3]:-${BASH_REMATCH[1]}}
	if [ "$lo" -lt 1 ] || [ "$hi" -gt 65535 ] || [ "$lo" -gt "$hi" ]; then
		die 1 "firewall_ports: '$p' is out of 1-65535"
	fi
	fw_rules+=("${p%/*}/${BASH_REMATCH[5]:-tcp}")
done

# The public keys: the input, else root's (without the options providers
# put in front, like command="echo Please login as..."). A private key or
# anything else is refused.
key_re='((sk-)?(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521))(@openssh\.com)? [A-Za-z0-9+/]+={0,3})( .*)?$'
keys=""
n=0
source_name=ssh_authorized_keys
key_text=$SSH_AUTHORIZED_KEYS
if [ -z "${key_text//[[:space:]]/}" ] && root_file "$R/root/.ssh/authorized_keys" 2>/dev/null; then
	key_text=$(cat "$ROOT_FILE")
	source_name=/root/.ssh/authorized_keys
fi
while IFS= read -r line || [ -n "$line" ]; do
	n=$((n + 1))
	line=${line%$'\r'}
	[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
	[[ $line == *"PRIVATE KEY"* ]] && die 1 "$source_name: line $n is a private key; give the public key"
	if [[ $line =~ ^$key_re ]]; then
		keys+="${BASH_REMATCH[0]}"$'\n'
	elif [ "$source_name" != ssh_authorized_keys ] && [[ $line =~ [[:space:]]$key_re ]]; then
		keys+="${BASH_REMATCH[1]}${BASH_REMATCH[7]}"$'\n'
	else
		die 1 "$source_name: line $n is not an SSH public key (ssh-ed25519 AAAA... comment)"
	fi
done <<<"$key_text"
[ -n "$keys" ] || die 1 "no SSH public key for $DEPLOY_USER: give ssh_authorized_keys (root has none either), or disabling root login would leave no way in"

# ---- packages -----------------------------------------------------------

# iproute2 ships ss, which tells whether sshd listens on a new ssh_port.
pkgs=(ca-certificates curl wget jq git gnupg sudo openssh-server iproute2 rsync htop vim-tiny less unzip)
[ "$FIREWALL" = true ] && pkgs+=(ufw)
[ "$FAIL2BAN" = true ] && pkgs+=(fail2ban python3-systemd)
[ "$UNATTENDED_UPGRADES" = true ] && pkgs+=(unattended-upgrades apt-listchanges)
ensure_packages "${pkgs[@]}" "${extra_pkgs[@]}"

# ---- the deploy user ----------------------------------------------------

if [ -z "$(passwd_field "$DEPLOY_USER" 1)" ]; then
	user_tool useradd --create-home --shell /bin/bash --user-group --groups sudo "$DEPLOY_USER" ||
		die 3 "useradd $DEPLOY_USER failed"
	say "created the user $DEPLOY_USER"
elif ! in_group "$DEPLOY_USER" sudo; then
	user_tool usermod --append --groups sudo "$DEPLOY_USER" || die 3 "usermod $DEPLOY_USER failed"
fi
uid=$(passwd_field "$DEPLOY_USER" 3)
gid=$(passwd_field "$DEPLOY_USER" 4)
home=$(passwd_field "$DEPLOY_USER" 6)
if [ -z "$uid" ] || [ -z "$home" ]; then
	die 3 "$DEPLOY_USER is not in $R/etc/passwd after useradd"
fi

# The user has no password (keys only), so sudo must not ask for one.
put_file "$R/etc/sudoers.d/90-firstboot-$DEPLOY_USER" 0440 0:0 visudo -cf <<EOF
# Managed by firstboot (module base).
$DEPLOY_USER ALL=(ALL:ALL) NOPASSWD: ALL
EOF

# ~/.ssh is the deploy user's: a link there (to /etc, say) is refused,
# never followed by chown or chmod.
root_entry "$R$home/.ssh" || die 3 "$home/.ssh: cannot find it inside the root"
[ ! -L "$ROOT_ENTRY" ] || die 3 "$home/.ssh is a symbolic link: refused (its owner and mode are not changed)"
if [ ! -d "$ROOT_ENTRY" ]; then
	make_dir "$R$home/.ssh"
	say "created $home/.ssh"
fi
[ "$(stat -c '%a %u:%g' "$ROOT_ENTRY")" = "700 $uid:$gid" ] || {
	chown -h "$uid:$gid" "$ROOT_ENTRY" || die 3 "$home/.ssh: cannot give it to $DEPLOY_USER"
	chmod 0700 "$ROOT_ENTRY" || die 3 "$home/.ssh: cannot give it mode 0700"
}
printf '%s' "$keys" | put_file "$R$home/.ssh/authorized_keys" 0600 "$uid:$gid"

# ---- firewall -----------------------------------------------------------
# Before sshd moves to another port, so that port is open first.

# The SSH port whose rule base keeps (written while the firewall is on),
# so that the old one's rule is deleted once sshd moved to a new ssh_port,
# and so that a firewall turned off is one base turned on.
FW_STATE=$R/var/lib/firstboot-stack/state/base-ssh-port
# root_has PATH: PATH (links followed inside the root) is a regular file;
# IN_ROOT is where it is.
root_has() { in_root "$1" && [ -f "$IN_ROOT" ]; }
# The port sshd was last moved to (the state above): until sshd listens on
# a new ssh_port, the rule of this one stays.
read_state base-ssh-port
cur_port=$STATE_VALUE
[[ $cur_port =~ ^[0-9]+$ ]] || cur_port=""
in_root "$R/etc/ufw/user.rules" || die 3 "/etc/ufw/user.rules: cannot find it inside the root"
UFW_RULES=$IN_ROOT
in_root "$R/etc/ufw/ufw.conf" || die 3 "/etc/ufw/ufw.conf: cannot find it inside the root"
UFW_CONF=$IN_ROOT
in_root "$R/etc/default/ufw" || die 3 "/etc/default/ufw: cannot find it inside the root"
UFW_DEFAULT=$IN_ROOT
ufw_has() { # ACTION PROTO PORT
	grep -qE "^### tuple ### $1 $2 $3 0\.0\.0\.0/0 any 0\.0\.0\.0/0 in( |$)" "$UFW_RULES" 2>/dev/null
}
ufw_ensure() { # ACTION PORT/PROTO [COMMENT]
	local port=${2%/*} proto=${2#*/}
	ufw_has "$1" "$proto" "$port" && return 1
	ufw "$1" "$2" ${3:+comment "$3"} || die 3 "ufw $1 $2 failed"
}
# The firewall_ports rules carry this comment, which ufw keeps hex-encoded
# at the end of their tuple line in user.rules (" comment=HEX"), so a port
# gone from firewall_ports (or from the apps imagegen adds to it) is found
# and closed on the next run. A rule that was there before base (with
# another comment or none) is left alone, as are SSH, 80 and 443.
# The SSH ports (ssh_port and the one sshd still uses) are left out of
# the firewall_ports rules: ufw replaces a rule that differs only in its
# action, so "allow 22/tcp" would replace "limit 22/tcp" (losing the rate
# limit), and deleting it would close SSH.
fw_comment="firstboot firewall_ports"
fw_comment_hex=$(printf '%s' "$fw_comment" | od -An -v -tx1 | tr -d ' \n')
if [ "$FIREWALL" = true ]; then
	grep -qx 'DEFAULT_INPUT_POLICY="DROP"' "$UFW_DEFAULT" 2>/dev/null ||
		ufw default deny incoming || die 3 "ufw default deny incoming failed"
	grep -qx 'DEFAULT_OUTPUT_POLICY="ACCEPT"' "$UFW_DEFAULT" 2>/dev/null ||
		ufw default allow outgoing || die 3 "ufw default allow outgoing failed"
	ssh_rule_added=0
	ufw_ensure limit "$SSH_PORT/tcp" && ssh_rule_added=1
	ufw_ensure allow 80/tcp || true
	ufw_ensure allow 443/tcp || true
	ssh_rules=" $SSH_PORT/tcp ${cur_port:+$cur_port/tcp }"
	for r in "${fw_rules[@]}"; do
		case $ssh_rules in *" $r "*) continue ;; esac
		ufw_ensure allow "$r" "$fw_comment" || true
	done
	mapfile -t fw_ours < <(sed -nE "s|^### tuple ### allow (tcp\|udp) ([0-9]+(:[0-9]+)?) 0\.0\.0\.0/0 any 0\.0\.0\.0/0 in comment=$fw_comment_hex\$|\2/\1|p" \
		"$UFW_RULES" 2>/dev/null)
	for r in "${fw_ours[@]}"; do
		case " ${fw_rules[*]}${ssh_rules}80/tcp 443/tcp " in *" $r "*) continue ;; esac
		ufw delete allow "$r" || die 3 "ufw delete allow $r failed"
		say "closed $r (no longer in firewall_ports)"
	done
	if ! grep -qx 'ENABLED=yes' "$UFW_CONF" 2>/dev/null; then
		ufw --force enable || die 3 "ufw enable failed"
	fi
fi

# ---- SSH ----------------------------------------------------------------
# sshd keeps the first value it reads for a keyword and reads the
# sshd_config.d files in order, so ours is 00- (cloud images ship a
# 50-cloud-init.conf that turns password logins on).

ssh_changed=0
ssh_rule_added=${ssh_rule_added:-0}
# Read and rewritten inside the root (root_file): a link there is
# followed as the root sees it (the file it names is rewritten, the link
# stays), never out of the root.
root_file "$R/etc/ssh/sshd_config" || die 3 "/etc/ssh/sshd_config is missing or not a regular file inside the root (openssh-server not installed?)"
main=$ROOT_FILE
if ! grep -qE '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' "$main"; then
	{
		echo "Include /etc/ssh/sshd_config.d/*.conf"
		cat -- "$main"
	} | put_file "$main" "$(stat -c '%a' -- "$main")" "$(stat -c '%u:%g' -- "$main")"
	ssh_changed=1
fi
if ! compgen -G "$R/etc/ssh/ssh_host_*_key" >/dev/null; then
	if [ -n "$R" ]; then ssh-keygen -A -f "$R"; else ssh-keygen -A; fi || die 3 "ssh-keygen -A failed"
fi
dropin=$R/etc/ssh/sshd_config.d/00-firstboot.conf
old=""
if root_has "$dropin"; then old=$(cat -- "$IN_ROOT"); fi
# restore_dropin: the drop-in as it was before this run.
restore_dropin() {
	if [ -n "$old" ]; then
		put_file "$dropin" 0644 0:0 <<<"$old"
	else
		remove_file "$dropin"
	fi
}
put_file "$dropin" 0644 0:0 <<EOF
# Managed by firstboot (module base).
Port $SSH_PORT
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PubkeyAuthentication yes
AuthenticationMethods publickey
MaxAuthTries 3
LoginGraceTime 30
X11Forwarding no
ClientAliveInterval 300
ClientAliveCountMax 2
EOF
[ "$FILE_CHANGED" = 1 ] && ssh_changed=1
if [ $ssh_changed = 1 ]; then
	if ! sshd -t -f "$main"; then
		restore_dropin
		if [ "$ssh_rule_added" = 1 ]; then ufw delete limit "$SSH_PORT/tcp" || true; fi
		die 3 "sshd -t refused the configuration; the previous one is kept"
	fi
fi
ensure_service ssh "$ssh_changed" reload

# A reload only sends sshd SIGHUP: one that cannot bind the new port
# exits (ssh.service does not restart it after exit 255). So after a
# reload, or while a move to ssh_port is not known to have worked, sshd
# must be active and itself listening on ssh_port within 10 s; else the previous
# drop-in goes back (sshd restarted on it) and the old port's rule and the
# state stay.
ssh_listening() { # PORT
	local i
	for ((i = 0; i < 50; i++)); do
		# sshd's own listener (ss -p: users:(("sshd",pid=N,fd=N))): a
		# port another program holds is not sshd having moved.
		if systemctl is-active --quiet ssh &&
			[[ $(ss -Hltnp "sport = :$1" 2>/dev/null) == *'users:(("sshd",'* ]]; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}
if [ "$ssh_changed" = 1 ] || { [ -n "$cur_port" ] && [ "$cur_port" != "$SSH_PORT" ]; }; then
	if ! ssh_listening "$SSH_PORT"; then
		back=""
		if [ "$ssh_changed" = 1 ]; then
			restore_dropin
			systemctl restart ssh || true
			back="; the previous sshd drop-in is back (ssh restarted)"
		fi
		die 3 "sshd is not active and listening on port $SSH_PORT 10 s after the reload (port taken?)$back${cur_port:+; port $cur_port stays open and recorded}"
	fi
fi

# ---- the old SSH port's rule --------------------------------------------
# Once sshd listens on the new port. The old port's firewall_ports rule,
# left out while it was the SSH port, is added then.

if [ "$FIREWALL" = true ]; then
	if [ -n "$cur_port" ] && [ "$cur_port" != "$SSH_PORT" ]; then
		if ufw_has limit tcp "$cur_port"; then
			ufw delete limit "$cur_port/tcp" || die 3 "ufw delete limit $cur_port/tcp failed"
			say "closed $cur_port/tcp (the SSH port before $SSH_PORT)"
		fi
		case " ${fw_rules[*]} " in
		*" $cur_port/tcp "*) ufw_ensure allow "$cur_port/tcp" "$fw_comment" || true ;;
		*)
			# A firewall_ports rule of that port (one an older base let
			# replace the limit rule) goes too.
			if grep -qx "### tuple ### allow tcp $cur_port 0\.0\.0\.0/0 any 0\.0\.0\.0/0 in comment=$fw_comment_hex" "$UFW_RULES" 2>/dev/null; then
				ufw delete allow "$cur_port/tcp" || die 3 "ufw delete allow $cur_port/tcp failed"
				say "closed $cur_port/tcp (the SSH port before $SSH_PORT, not in firewall_ports)"
			fi
			;;
		esac
	fi
	record_state base-ssh-port "$SSH_PORT"
elif root_has "$FW_STATE"; then
	# Turned off: the firewall this module enabled is disabled (its rules
	# stay in ufw's files, unused).
	ufw disable || die 3 "ufw disable failed"
	remove_file "$FW_STATE"
	say "firewall: disabled (firewall false)"
fi

# ---- fail2ban -----------------------------------------------------------
# Debian 12 logs to the journal only (no /var/log/auth.log), so the jail
# reads the journal (backend systemd, python3-systemd).

if [ "$FAIL2BAN" = true ]; then
	put_file "$R/etc/fail2ban/jail.d/00-firstboot.local" 0644 0:0 <<EOF
# Managed by firstboot (module base).
[DEFAULT]
bantime = 1h
findtime = 10m
maxretry = 5

[sshd]
enabled = true
port = $SSH_PORT
backend = systemd
EOF
	f2b_changed=$FILE_CHANGED
	if [ "$f2b_changed" = 1 ]; then
		fail2ban-client -c "$R/etc/fail2ban" --test >/dev/null || die 3 "fail2ban-client --test refused the configuration"
	fi
	ensure_service fail2ban "$f2b_changed" restart
elif root_has "$R/etc/fail2ban/jail.d/00-firstboot.local"; then
	# Turned off: the service stops, then the jail this module wrote goes
	# (it marks fail2ban as base's: a failed disable is tried again).
	systemctl disable --now fail2ban || die 3 "systemctl disable --now fail2ban failed"
	remove_file "$R/etc/fail2ban/jail.d/00-firstboot.local"
	say "fail2ban: stopped and disabled (fail2ban false)"
fi

# ---- unattended upgrades ------------------------------------------------

if [ "$UNATTENDED_UPGRADES" = true ]; then
	put_file "$R/etc/apt/apt.conf.d/20auto-upgrades" 0644 0:0 <<'EOF'
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
EOF
	put_file "$R/etc/apt/apt.conf.d/52firstboot-unattended-upgrades" 0644 0:0 <<EOF
// Managed by firstboot (module base). Debian's 50unattended-upgrades
// already limits the upgrades to the security archive.
Unattended-Upgrade::Remove-Unused-Kernel-Packages "true";
Unattended-Upgrade::Remove-Unused-Dependencies "true";
Unattended-Upgrade::Automatic-Reboot "$AUTO_REBOOT";
Unattended-Upgrade::Automatic-Reboot-Time "$AUTO_REBOOT_TIME";
EOF
	ensure_service unattended-upgrades 0 restart
	ensure_service apt-daily.timer 0 restart
	ensure_service apt-daily-upgrade.timer 0 restart
elif root_has "$R/etc/apt/apt.conf.d/52firstboot-unattended-upgrades"; then
	# Turned off: APT's periodic run no longer upgrades (read at each run,
	# nothing to restart).
	put_file "$R/etc/apt/apt.conf.d/20auto-upgrades" 0644 0:0 <<'EOF'
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "0";
EOF
	remove_file "$R/etc/apt/apt.conf.d/52firstboot-unattended-upgrades"
	say "unattended upgrades: turned off (unattended_upgrades false)"
fi

say "done: user $DEPLOY_USER, ssh on port $SSH_PORT, firewall $FIREWALL, fail2ban $FAIL2BAN, unattended upgrades $UNATTENDED_UPGRADES"
