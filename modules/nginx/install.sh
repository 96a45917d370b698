#!/bin/bash
# nginx: nginx with the site configuration imagegen rendered (a bundle
# file at config_path) and TLS from the bundle's certificates (tls_dir) or
# from Let's Encrypt. Run by firstboot under the module contract: inputs
# in the environment, every file under $FIRSTBOOT_ROOT, commands from
# PATH, services through systemctl. Exit 1 bad input, 2 a package install
# or the certificate request failed (retried), 3 the configuration was
# refused. nginx -t comes before every reload; a running nginx is
# reloaded, never restarted. A second run with the same files changes
# nothing.
#
# With certbot the site configuration uses the same tls_dir paths: until
# the first certificate is issued they hold a short-lived self-signed
# pair, so nginx can start and answer the ACME challenge on port 80; then
# they become links to /etc/letsencrypt/live/DOMAIN/.
set -euo pipefail
umask 022

# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

CONFIG_PATH=${CONFIG_PATH:-/etc/nginx/conf.d/firstboot.conf}
TLS_MODE=${TLS_MODE:-self-signed}
TLS_DIR=${TLS_DIR:-/etc/firstboot/tls}
DOMAIN=${DOMAIN:-}
EMAIL=${EMAIL:-}
CERTBOT_METHOD=${CERTBOT_METHOD:-webroot}
WEBROOT=${WEBROOT:-/var/www/certbot}
CERTBOT_STAGING=${CERTBOT_STAGING:-false}
REMOVE_DEFAULT_SITE=${REMOVE_DEFAULT_SITE:-true}

# ---- inputs -------------------------------------------------------------

abs_path() {
	if ! [[ $2 =~ ^(/[A-Za-z0-9._-]+)+$ ]] || [[ $2 == */..* ]]; then die 1 "$1 must be an absolute path"; fi
}
abs_path config_path "$CONFIG_PATH"
abs_path tls_dir "$TLS_DIR"
abs_path webroot "$WEBROOT"
case $TLS_MODE in self-signed | certbot | none) ;; *) die 1 "tls_mode must be self-signed, certbot or none" ;; esac
case $CERTBOT_METHOD in webroot | nginx) ;; *) die 1 "certbot_method must be webroot or nginx" ;; esac
case $CERTBOT_STAGING$REMOVE_DEFAULT_SITE in truetrue | truefalse | falsetrue | falsefalse) ;;
*) die 1 "certbot_staging and remove_default_site must be true or false" ;;
esac
if [ "$TLS_MODE" = certbot ]; then
	[ -n "$DOMAIN" ] || die 1 "tls_mode certbot needs domain"
	[ -n "$EMAIL" ] || die 1 "tls_mode certbot needs email (Let's Encrypt's expiry notices)"
	[[ $DOMAIN =~ ^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}$ ]] || die 1 "domain must be a DNS name like example.org"
	[[ $EMAIL =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]] || die 1 "email must be an address like name@example.org"
fi

# ---- packages -----------------------------------------------------------

pkgs=(nginx)
if [ "$TLS_MODE" = certbot ]; then
	pkgs+=(certbot)
	[ "$CERTBOT_METHOD" = nginx ] && pkgs+=(python3-certbot-nginx)
fi
ensure_packages "${pkgs[@]}"

# ---- the site -----------------------------------------------------------

[ -f "$R$CONFIG_PATH" ] || die 3 "$CONFIG_PATH is missing: imagegen renders it into the bundle (templates/index.yml)"
changed=0
# Its folder is found inside the root (root_entry): a link at
# sites-enabled out of the root is not followed to remove a file there.
if [ "$REMOVE_DEFAULT_SITE" = true ]; then
	root_entry "$R/etc/nginx/sites-enabled/default" || die 3 "/etc/nginx/sites-enabled cannot be resolved inside the root"
	if [ -e "$ROOT_ENTRY" ] || [ -L "$ROOT_ENTRY" ]; then
		remove_file "$R/etc/nginx/sites-enabled/default"
		say "removed the default site"
		changed=1
	fi
fi

# start_or_reload: nginx -t, then reload when running, else enable+start.
start_or_reload() {
	nginx -t || die 3 "nginx -t refused the configuration; nginx keeps running the previous one"
	if ! systemctl is-enabled --quiet nginx; then
		systemctl enable nginx || die 3 "cannot enable nginx"
	fi
	if systemctl is-active --quiet nginx; then
		systemctl reload nginx || die 3 "nginx: reload failed"
	else
		systemctl start nginx || die 3 "nginx does not start (see journalctl -u nginx)"
	fi
}

# ---- TLS ----------------------------------------------------------------

cert=$R$TLS_DIR/fullchain.pem
key=$R$TLS_DIR/server.key
case $TLS_MODE in
self-signed)
	[ -s "$cert" ] || die 3 "$TLS_DIR/fullchain.pem is missing: imagegen ships it in the bundle"
	[ -s "$key" ] || die 3 "$TLS_DIR/server.key is missing: imagegen ships it in the bundle"
	# Inside the root (root_entry): chown and chmod would change what a
	# link there points to, so a link is refused (set_mode).
	root_entry "$key" || die 3 "$TLS_DIR cannot be resolved inside the root"
	if [ "$(stat -c '%a %u' -- "$ROOT_ENTRY")" != "600 0" ]; then
		[ ! -L "$ROOT_ENTRY" ] || die 3 "$TLS_DIR/server.key is a symbolic link: its owner and mode are not changed (give the real file)"
		chown -h 0:0 -- "$ROOT_ENTRY" || die 3 "$TLS_DIR/server.key: cannot give it owner root"
		set_mode "$key" 0600
		say "$TLS_DIR/server.key: mode 0600, owner root"
		changed=1
	fi
	;;
certbot)
	live=/etc/letsencrypt/live/$DOMAIN
	if [ ! -s "$R$live/fullchain.pem" ]; then
		if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
			say "a temporary self-signed certificate for $DOMAIN until Let's Encrypt issues one"
			make_dir "$R$TLS_DIR"
			tls_in=$IN_ROOT
			remove_file "$cert"
			remove_file "$key"
			# Written in the folder as found inside the root (make_dir).
			(umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=$DOMAIN" \
				-keyout "$tls_in/server.key" -out "$tls_in/fullchain.pem" 2>&1) || die 3 "openssl could not make the temporary certificate"
			set_mode "$cert" 0644
		fi
		make_dir "$R$WEBROOT"
		start_or_reload
		args=(certonly --non-interactive --agree-tos --no-eff-email --keep-until-expiring
			--email "$EMAIL" -d "$DOMAIN" --config-dir "$R/etc/letsencrypt"
			--work-dir "$R/var/lib/letsencrypt" --logs-dir "$R/var/log/letsencrypt")
		if [ "$CERTBOT_METHOD" = webroot ]; then args+=(--webroot -w "$R$WEBROOT"); else args+=(--nginx); fi
		[ "$CERTBOT_STAGING" = true ] && args+=(--staging)
		say "requesting a certificate for $DOMAIN from Let's Encrypt"
		certbot "${args[@]}" || die 2 "certbot could not get a certificate for $DOMAIN (does its DNS point here, is port 80 open?)"
		[ -s "$R$live/fullchain.pem" ] || die 3 "certbot succeeded but $live/fullchain.pem is missing"
	fi
	for pair in fullchain.pem:fullchain.pem server.key:privkey.pem; do
		link=$R$TLS_DIR/${pair%%:*}
		if [ "$(readlink "$link" || true)" != "$live/${pair#*:}" ]; then
			make_dir "$R$TLS_DIR"
			ln -sfn "$live/${pair#*:}" "$link"
			say "$TLS_DIR/${pair%%:*} -> $live/${pair#*:}"
			changed=1
		fi
	done
	# Renewals reload nginx (after checking it).
	put_file "$R/etc/letsencrypt/renewal-hooks/deploy/50-firstboot-nginx" 0755 0:0 <<'EOT'
#!/bin/sh
# Managed by firstboot (module nginx): load a renewed certificate.
nginx -t -q && systemctl reload nginx
EOT
	ensure_service certbot.timer 0 restart
	;;
esac

# ---- load it ------------------------------------------------------------
# What nginx was last loaded with is remembered as a checksum of the site
# and the certificates; the same again with nginx running is nothing to do.

sum=$(
	{
		echo "$CONFIG_PATH $TLS_MODE"
		cat "$R$CONFIG_PATH"
		if [ "$TLS_MODE" != none ]; then
			if [ "$TLS_MODE" = certbot ]; then cat "$R/etc/letsencrypt/live/$DOMAIN/fullchain.pem"; else cat "$cert"; fi
		fi
	} | sha256sum | cut -d' ' -f1
)
read_state nginx.sha256
old_sum=$STATE_VALUE
if [ "$sum" != "$old_sum" ] || [ $changed = 1 ] || ! systemctl is-active --quiet nginx; then
	start_or_reload
	record_state nginx.sha256 "$sum"
else
	ensure_service nginx 0 reload
	say "nginx already runs this configuration"
fi
say "done: nginx with ${CONFIG_PATH}, TLS $TLS_MODE"
