#!/bin/bash
# The nginx module through the real agent on a temporary root, the site
# configuration and certificates coming as bundle files. `nginx -t` is the
# REAL nginx checking the root's configuration (its absolute paths moved
# under the root); systemctl, apt-get and certbot are recorders. The site
# here is this test's own fixture, shaped like the stack's (gRPC to 50051,
# REST to 8080, the dashboard to 3000, the ACME challenge on port 80); the
# rendered templates are checked with nginx -t by the template tests.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"

t_check "the nginx manifest validates" "$FIRSTBOOT" validate "$TOP/modules/nginx/manifest.yml"

mkdir -p "$T/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=colony.example.org" \
	-keyout "$T/tls/server.key" -out "$T/tls/fullchain.pem" 2>/dev/null
site() { # UPSTREAM-PORT
	cat <<EOF
upstream colonies_grpc { server 127.0.0.1:50051; }
upstream colonies_rest { server 127.0.0.1:${1:-8080}; }
server {
    listen 80;
    server_name colony.example.org;
    location /.well-known/acme-challenge/ { root /var/www/certbot; }
    location / { return 301 https://\$host\$request_uri; }
}
server {
    listen 443 ssl http2;
    server_name colony.example.org;
    ssl_certificate /etc/firstboot/tls/fullchain.pem;
    ssl_certificate_key /etc/firstboot/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location /colonies.ColoniesService/ { grpc_pass grpc://colonies_grpc; }
    location /api/ { proxy_pass http://colonies_rest; proxy_set_header Host \$host; }
    location / { proxy_pass http://127.0.0.1:3000; proxy_http_version 1.1; }
}
EOF
}
site 8080 >"$T/site.conf"

# fresh NAME: a root with Debian's default site enabled, recorders, and
# `nginx -t` run for real on the root's conf.d.
fresh() {
	R=$T/$1
	mod_root "$R"
	mkdir -p "$R/etc/nginx/conf.d" "$R/etc/nginx/sites-enabled" "$R/etc/nginx/sites-available"
	echo 'server { listen 80 default_server; }' >"$R/etc/nginx/sites-available/default"
	ln -s /etc/nginx/sites-available/default "$R/etc/nginx/sites-enabled/default"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}"
	mod_ctl nginx <<EOF
for a; do [ "\$a" = -t ] && t=1; done
[ -n "\${t:-}" ] || exit 0
d=$T/$1.nginx-t
rm -rf "\$d"
mkdir -p "\$d/conf.d"
for f in "$R"/etc/nginx/conf.d/*.conf; do
	[ -f "\$f" ] || continue
	sed -e "s|/etc/|$R/etc/|g" -e "s|/var/|$R/var/|g" "\$f" >"\$d/conf.d/\$(basename "\$f")"
done
printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  include /etc/nginx/mime.types;\n  access_log off;\n  include %s/conf.d/*.conf;\n}\n' "\$d" "\$d" >"\$d/nginx.conf"
exec /usr/sbin/nginx -t -q -e stderr -c "\$d/nginx.conf"
EOF
	mod_files_reset
	mod_file "$T/site.conf" /etc/nginx/conf.d/firstboot.conf 0644
	mod_file "$T/tls/fullchain.pem" /etc/firstboot/tls/fullchain.pem 0644
	mod_file "$T/tls/server.key" /etc/firstboot/tls/server.key 0600
}

t_case "a fresh server: nginx installed, the default site removed, nginx -t passed, enabled and started"
fresh r1
if mod_run "$R" nginx &&
	mod_order '^apt-get .*install --no-install-recommends nginx$' '^nginx -t$' '^systemctl enable nginx' '^systemctl start nginx' &&
	mod_not_called '^systemctl (reload|restart) ' && [ ! -e "$R/etc/nginx/sites-enabled/default" ] &&
	[ ! -L "$R/etc/nginx/sites-enabled/default" ] && [ "$(stat -c %a "$R/etc/firstboot/tls/server.key")" = 600 ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "a second run changes nothing: no install, no nginx -t, no reload"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" nginx && mod_not_called '^apt-get' && mod_not_called '^nginx' &&
	mod_not_called '^systemctl (start|restart|reload|enable) ' && [ "$(tree_snapshot "$R")" = "$before" ] &&
	mod_lastlog "$R" nginx | grep -q 'already runs this configuration'; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "a changed site is checked, then reloaded (not restarted) in the running nginx"
site 8081 >"$T/site2.conf"
mod_files_reset
mod_file "$T/site2.conf" /etc/nginx/conf.d/firstboot.conf 0644
mod_file "$T/tls/fullchain.pem" /etc/firstboot/tls/fullchain.pem 0644
mod_file "$T/tls/server.key" /etc/firstboot/tls/server.key 0600
mod_reset_calls
if mod_run "$R" nginx && mod_order '^nginx -t$' '^systemctl reload nginx' && mod_not_called '^systemctl (restart|start) ' &&
	mod_not_called '^apt-get'; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "a site nginx -t refuses: exit 3, no reload; fixed, the next run reloads"
printf 'server {\n    listen 443 ssl;\n    proxy_pass_bogus on;\n}\n' >"$T/bad.conf"
mod_files_reset
mod_file "$T/bad.conf" /etc/nginx/conf.d/firstboot.conf 0644
mod_reset_calls
if ! mod_run "$R" nginx && [ "$(mod_exit "$R" nginx)" = 3 ] && [ "$(mod_attempts "$R" nginx)" = 1 ] &&
	mod_not_called '^systemctl reload' && mod_lastlog "$R" nginx | grep -q 'proxy_pass_bogus'; then
	site 8082 >"$T/site3.conf"
	mod_files_reset
	mod_file "$T/site3.conf" /etc/nginx/conf.d/firstboot.conf 0644
	mod_reset_calls
	if mod_run "$R" nginx && mod_order '^nginx -t$' '^systemctl reload nginx'; then t_pass; else t_fail "no reload after the fix"; fi
else t_fail "exit $(mod_exit "$R" nginx): $(mod_calls "" | tr '\n' ';')"; fi

t_case "the site missing: exit 3 naming it; the certificates missing: exit 3"
fresh r2
mod_files_reset
if ! mod_run "$R" nginx && [ "$(mod_exit "$R" nginx)" = 3 ] && mod_lastlog "$R" nginx | grep -q '/etc/nginx/conf.d/firstboot.conf is missing' &&
	mod_file "$T/site.conf" /etc/nginx/conf.d/firstboot.conf 0644 && ! mod_run "$R" nginx && [ "$(mod_exit "$R" nginx)" = 3 ] &&
	mod_lastlog "$R" nginx | grep -q 'fullchain.pem is missing' && mod_not_called '^systemctl (start|reload)'; then t_pass; else
	t_fail "exit $(mod_exit "$R" nginx)"
fi

t_case "tls_mode none needs no certificates"
printf 'server {\n    listen 80;\n    location / { proxy_pass http://127.0.0.1:8080; }\n}\n' >"$T/plain.conf"
fresh r2b
mod_files_reset
mod_file "$T/plain.conf" /etc/nginx/conf.d/firstboot.conf 0644
if mod_run "$R" nginx tls_mode=none config_path=/etc/nginx/conf.d/firstboot.conf remove_default_site=false &&
	[ -L "$R/etc/nginx/sites-enabled/default" ]; then t_pass; else t_fail "exit $(mod_exit "$R" nginx)"; fi

t_case "apt-get failing: exit 2, retried"
fresh r3
mod_fail apt-get 100 install
if ! mod_run "$R" nginx && [ "$(mod_exit "$R" nginx)" = 2 ] && [ "$(mod_attempts "$R" nginx)" = 3 ]; then t_pass; else
	t_fail "exit $(mod_exit "$R" nginx)"
fi

t_case "certbot without domain or email: exit 1"
fresh r4
if ! mod_run "$R" nginx tls_mode=certbot email=ops@example.org && [ "$(mod_exit "$R" nginx)" = 1 ] &&
	mod_lastlog "$R" nginx | grep -q 'needs domain' && ! mod_run "$R" nginx tls_mode=certbot domain=colony.example.org &&
	[ "$(mod_exit "$R" nginx)" = 1 ] && mod_not_called '^apt-get'; then t_pass; else t_fail "exit $(mod_exit "$R" nginx)"; fi

# certbot as a recorder that "issues" a certificate into --config-dir.
certbot_issues() {
	mod_ctl certbot <<'EOF'
while [ $# -gt 0 ]; do
	case $1 in -d) d=$2 ;; --config-dir) c=$2 ;; esac
	shift
done
mkdir -p "$c/live/$d"
openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj "/CN=$d" -keyout "$c/live/$d/privkey.pem" -out "$c/live/$d/fullchain.pem" 2>/dev/null
EOF
}

t_case "certbot: a temporary certificate, nginx started for the challenge, certbot, links, reload, renewal timer"
fresh r5
mod_files_reset
mod_file "$T/site.conf" /etc/nginx/conf.d/firstboot.conf 0644
mod_ctl_reset
certbot_issues
if mod_run "$R" nginx tls_mode=certbot domain=colony.example.org email=ops@example.org &&
	mod_order '^apt-get .*install --no-install-recommends certbot nginx$' '^nginx -t$' '^systemctl start nginx' \
		"^certbot certonly --non-interactive --agree-tos --no-eff-email --keep-until-expiring --email ops@example.org -d colony.example.org --config-dir $R/etc/letsencrypt .* --webroot -w $R/var/www/certbot$" \
		'^systemctl enable certbot.timer' '^systemctl reload nginx' &&
	[ "$(readlink "$R/etc/firstboot/tls/fullchain.pem")" = /etc/letsencrypt/live/colony.example.org/fullchain.pem ] &&
	[ "$(readlink "$R/etc/firstboot/tls/server.key")" = /etc/letsencrypt/live/colony.example.org/privkey.pem ] &&
	[ "$(stat -c %a "$R/etc/letsencrypt/renewal-hooks/deploy/50-firstboot-nginx")" = 755 ] && [ -d "$R/var/www/certbot" ]; then
	t_pass
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "certbot: a second run asks for nothing and reloads nothing"
mod_reset_calls
if mod_run "$R" nginx tls_mode=certbot domain=colony.example.org email=ops@example.org && mod_not_called '^certbot' &&
	mod_not_called '^systemctl (start|restart|reload|enable) ' && mod_not_called '^apt-get'; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "certbot failing (DNS not there yet): exit 2, retried, nginx still serving the temporary certificate"
fresh r6
mod_files_reset
mod_file "$T/site.conf" /etc/nginx/conf.d/firstboot.conf 0644
mod_ctl_reset
mod_fail certbot 1
if ! mod_run "$R" nginx tls_mode=certbot domain=colony.example.org email=ops@example.org certbot_staging=true &&
	[ "$(mod_exit "$R" nginx)" = 2 ] && [ "$(mod_attempts "$R" nginx)" = 3 ] && mod_called '^certbot .* --staging$' &&
	[ -s "$R/etc/firstboot/tls/fullchain.pem" ] && [ ! -L "$R/etc/firstboot/tls/fullchain.pem" ] &&
	[ "$(stat -c %a "$R/etc/firstboot/tls/server.key")" = 600 ]; then t_pass; else t_fail "exit $(mod_exit "$R" nginx)"; fi

t_case "links out of the root (to this test's folder, relative): server.key one is refused (exit 3, what it points to keeps its mode); sites-enabled one is not followed to remove a default site there"
fresh r7
mod_run "$R" nginx >/dev/null
mkdir -p "$T/outside-tls" "$T/outside-sites"
cp "$T/tls/server.key" "$T/outside-tls/server.key"
chmod 0644 "$T/outside-tls/server.key"
rm "$R/etc/firstboot/tls/server.key"
ln -s ../../../../outside-tls/server.key "$R/etc/firstboot/tls/server.key"
mod_exec "$R" nginx
rc1=$?
err1=$(cat "$MOD_ERR")
rm "$R/etc/firstboot/tls/server.key"
cp "$T/tls/server.key" "$R/etc/firstboot/tls/server.key"
chmod 0600 "$R/etc/firstboot/tls/server.key"
echo 'server { listen 80 default_server; }' >"$T/outside-sites/default"
rm -rf "$R/etc/nginx/sites-enabled"
ln -s ../../../outside-sites "$R/etc/nginx/sites-enabled"
mod_exec "$R" nginx
rc2=$?
if [ $rc1 = 3 ] && grep -q '/etc/firstboot/tls/server.key is a symbolic link' <<<"$err1" &&
	[ "$(stat -c %a "$T/outside-tls/server.key")" = 644 ] && [ $rc2 = 0 ] && [ -f "$T/outside-sites/default" ]; then t_pass; else
	t_fail "exits $rc1 $rc2: $(tail -n 1 <<<"$err1"); key out of the root $(stat -c %a "$T/outside-tls/server.key"), $(ls "$T/outside-sites")"
fi

# ---- a real nginx serving, reconfigured in place ----------------------
# systemctl drives a real nginx master (Debian's /usr/sbin/nginx) whose
# nginx.conf includes the root's conf.d, its /etc paths moved under the
# root: start starts it, reload is `nginx -s reload` (as Debian's
# nginx.service ExecReload), is-active asks its master. The site listens
# on a free port on 127.0.0.1.
NP=$(free_port)
NX=$T/nginx-live
mkdir -p "$NX/conf.d" "$NX/tmp"
fresh live
mod_ctl_reset
mod_ctl nginx <<EOF
for a; do [ "\$a" = -t ] && t=1; done
[ -n "\${t:-}" ] || exit 0
d=$T/live.nginx-t
rm -rf "\$d"
mkdir -p "\$d/conf.d"
for f in "$R"/etc/nginx/conf.d/*.conf; do
	[ -f "\$f" ] || continue
	sed -e "s|/etc/|$R/etc/|g" "\$f" >"\$d/conf.d/\$(basename "\$f")"
done
printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  include %s/conf.d/*.conf;\n}\n' "\$d" "\$d" >"\$d/nginx.conf"
exec /usr/sbin/nginx -t -q -e stderr -c "\$d/nginx.conf"
EOF
mod_ctl systemctl <<EOF
unit=\${*: -1}
[ "\$unit" = nginx ] || exit 0
running() { [ -s "$NX/nginx.pid" ] && kill -0 "\$(cat "$NX/nginx.pid")" 2>/dev/null; }
render() {
	rm -f "$NX"/conf.d/*.conf
	for f in "$R"/etc/nginx/conf.d/*.conf; do
		[ -f "\$f" ] || continue
		sed -e "s|/etc/|$R/etc/|g" "\$f" >"$NX/conf.d/\$(basename "\$f")"
	done
	printf 'pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path %s/tmp/body;\n  proxy_temp_path %s/tmp/proxy;\n  fastcgi_temp_path %s/tmp/fcgi;\n  uwsgi_temp_path %s/tmp/uwsgi;\n  scgi_temp_path %s/tmp/scgi;\n  include %s/conf.d/*.conf;\n}\n' "$NX" "$NX" "$NX" "$NX" "$NX" "$NX" "$NX" "$NX" >"$NX/nginx.conf"
}
case \$1 in
is-active) running ;;
is-enabled) [ -e "$NX/enabled" ] ;;
enable) touch "$NX/enabled" ;;
start) render && /usr/sbin/nginx -e "$NX/error.log" -p "$NX" -c "$NX/nginx.conf" ;;
reload) running && render && /usr/sbin/nginx -e "$NX/error.log" -p "$NX" -c "$NX/nginx.conf" -s reload ;;
restart | stop) echo "systemctl \$1 nginx: not expected here" >&2; exit 1 ;;
esac
EOF
trap '[ -s "$NX/nginx.pid" ] && kill -QUIT "$(cat "$NX/nginx.pid")" 2>/dev/null; _cleanup' EXIT
live_site() { printf 'server {\n    listen 127.0.0.1:%s;\n    location / { return 200 "%s\\n"; }\n}\n' "$NP" "$1"; }
get() { curl -s --max-time 5 "http://127.0.0.1:$NP/"; }
live_run() { # SITE-FILE
	mod_files_reset
	mod_file "$1" /etc/nginx/conf.d/firstboot.conf 0644
	MOD_INSTANCE=i-live mod_run "$R" nginx tls_mode=none remove_default_site=false
}

t_case "real nginx: the first run starts it and it serves the site"
live_site one >"$T/live1.conf"
if live_run "$T/live1.conf" && mod_order '^nginx -t$' '^systemctl start nginx' && wait_eq 10 one get; then
	t_pass
else t_fail "$(get) / $(cat "$NX/error.log" 2>/dev/null) / $(mod_lastlog "$R" nginx | tail -n 3)"; fi
master=$(cat "$NX/nginx.pid" 2>/dev/null)

t_case "real nginx: a changed site (a watched file) is nginx -t then a reload: the same master serves the new site"
live_site two >"$T/live2.conf"
mod_reset_calls
if live_run "$T/live2.conf" && [ "$(_mod_status "$R" nginx why)" = "watched file changed: /etc/nginx/conf.d/firstboot.conf" ] &&
	mod_order '^nginx -t$' '^systemctl reload nginx' && mod_not_called '^systemctl (start|restart|stop) ' &&
	wait_eq 10 two get && [ "$(cat "$NX/nginx.pid")" = "$master" ] && kill -0 "$master"; then
	t_pass
else t_fail "$(get) master $master now $(cat "$NX/nginx.pid"): $(mod_calls "" | tr '\n' ';')"; fi

t_case "real nginx: a broken site is refused by nginx -t: exit 3, no reload, no ready marker, the old site still served"
printf 'server {\n    listen 127.0.0.1:%s;\n    proxy_pass_bogus on;\n}\n' "$NP" >"$T/live3.conf"
mod_reset_calls
if ! live_run "$T/live3.conf" && [ "$(mod_exit "$R" nginx)" = 3 ] && [ ! -e "$R/var/lib/firstboot/ready" ] &&
	mod_not_called '^systemctl (reload|restart|start|stop) ' && mod_lastlog "$R" nginx | grep -q 'proxy_pass_bogus' &&
	[ "$(get)" = two ] && [ "$(cat "$NX/nginx.pid")" = "$master" ]; then
	t_pass
else t_fail "exit $(mod_exit "$R" nginx) $(get): $(mod_calls "" | tr '\n' ';')"; fi

t_case "real nginx: fixed, it is reloaded again by the same master and the marker comes back"
live_site three >"$T/live4.conf"
mod_reset_calls
if live_run "$T/live4.conf" && mod_called '^systemctl reload nginx' && wait_eq 10 three get &&
	[ "$(cat "$NX/nginx.pid")" = "$master" ] && [ -f "$R/var/lib/firstboot/ready" ]; then
	t_pass
else t_fail "$(get): $(mod_calls "" | tr '\n' ';')"; fi
