#!/bin/bash
# Escaping, end to end: one nasty password rendered by imagegen's template
# renderer (driven through tests/tools/tmpl-render, the format picked from
# the template's name) and read back byte for byte by the real consumer of
# each format: PyYAML, docker-compose config (compose file, env_file and
# the project's .env), bash and dash, nginx (-t, then serving the value
# with `return 200`). Values a format cannot hold are refused with an
# error that names the variable and not the value.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

RENDER="$(dirname "$FIRSTBOOT")/tests/tools/tmpl-render"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

if [ ! -x "$RENDER" ]; then
	echo "not ok - tmpl-render is built ($RENDER missing: run make)"
	exit 1
fi
if ! "$PY" -c 'import yaml' 2>/dev/null; then
	echo "not ok - python3-yaml is installed (run make deps)"
	exit 1
fi

# The context, and each value's exact bytes in $T/want.KEY. pw has a
# leading space, '$', both quotes, '#', spaces, a backslash, ${HOME},
# $HOME, '{', ':', a tab, UTF-8 and a trailing backslash; pw_nl adds
# newlines; the nginx ones leave out what nginx cannot hold.
"$PY" - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
pw = " pa$s'w\"o#rd \\ ${HOME} $HOME $$ {a}: b\tx \u00e9\u20ac end\\"
ctx = {
    "pw": pw,
    "pw_nl": pw + "\nsecond line\n\n",
    "pw_nginx": pw.replace("$", ""),
    "pw_nginx_nl": pw.replace("$", "") + "\nx",
    "pw_js": pw + "\n\r\u2028\u2029\x01\x1f\x7f\x85\ufffe`${x}` \ufeff\U0001f511 </script>\n",
}
json.dump(ctx, open(t + "/ctx.json", "w"))
for k, v in ctx.items():
    open(t + "/want." + k, "wb").write(v.encode())
EOF

# same NAME KEY FILE: FILE holds exactly the bytes of value KEY.
same() {
	if cmp -s "$T/want.$2" "$3"; then
		return 0
	fi
	echo "  # $1: got $(od -An -c "$3" | head -c 400)" >&2
	echo "  # $1: want $(od -An -c "$T/want.$2" | head -c 400)" >&2
	return 1
}

# render TEMPLATE OUT: renders $T/TEMPLATE with the context into OUT.
render() {
	"$RENDER" "$T/$1" "$T/ctx.json" >"$2" 2>"$T/render.err" && return 0
	sed 's/^/  # /' "$T/render.err" >&2
	return 1
}

# yget YAML-FILE EXPR OUT: writes the string EXPR (Python, y bound to the
# parsed YAML) to OUT; with UNDOLLAR=1, "$$" is read back as "$" (what
# docker-compose config prints for a literal "$").
yget() {
	"$PY" - "$@" <<'EOF'
import os, sys, yaml
y = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
v = eval(sys.argv[2])
if os.environ.get("UNDOLLAR") == "1":
    v = v.replace("$$", "$")
open(sys.argv[3], "wb").write(v.encode())
EOF
}

# --- YAML, read by PyYAML -------------------------------------------------
t_case "yaml: values arrive exact through yaml.safe_load"
printf 'password: {{pw}}\nmulti: {{pw_nl}}\nflow: [{{pw}}, {{pw_nl}}]\nnested:\n  {{#pw}}\n  - {{.}}\n  {{/pw}}\n' \
	>"$T/config.yml.tmpl"
if render config.yml.tmpl "$T/config.yml" &&
	yget "$T/config.yml" "y['password']" "$T/y1" && same password pw "$T/y1" &&
	yget "$T/config.yml" "y['multi']" "$T/y2" && same multi pw_nl "$T/y2" &&
	yget "$T/config.yml" "y['flow'][0]" "$T/y3" && same flow0 pw "$T/y3" &&
	yget "$T/config.yml" "y['flow'][1]" "$T/y4" && same flow1 pw_nl "$T/y4" &&
	yget "$T/config.yml" "y['nested'][0]" "$T/y5" && same nested pw "$T/y5"; then
	t_pass
else
	t_fail "YAML value differs"
fi

# --- docker-compose: the compose file, env_file and the project .env --------
t_case "compose: docker-compose is installed"
if command -v docker-compose >/dev/null; then t_pass; else t_fail "docker-compose missing (run make deps)"; fi

C=$T/compose
mkdir -p "$C"
cat >"$T/docker-compose.yml.tmpl" <<'EOF'
version: "3.8"
services:
  app:
    image: busybox
    command: [echo, {{pw}}]
    env_file: app.env
    environment:
      PW: {{pw}}
      PW_NL: {{pw_nl}}
      FROM_DOTENV: ${D_PW}
      FROM_DOTENV_NL: ${D_NL}
EOF
printf 'E_PW={{pw}}\n# a comment\nE_NL={{pw_nl}}\nE_AFTER=after\n' >"$T/app.env.tmpl"
printf 'D_PW={{pw}}\nD_NL={{pw_nl}}\n' >"$T/.env.tmpl"
if render docker-compose.yml.tmpl "$C/docker-compose.yml" && render app.env.tmpl "$C/app.env" &&
	render .env.tmpl "$C/.env" &&
	(cd "$C" && HOME=/home-must-not-leak docker-compose -p escaping config) >"$C/config.yml" 2>"$C/config.err"; then
	cfg_ok=1
else
	cfg_ok=0
	sed 's/^/  # /' "$C/config.err" >&2
fi
svc="y['services']['app']"

t_case "compose: compose file values arrive exact through docker-compose config"
if [ "$cfg_ok" = 1 ] &&
	UNDOLLAR=1 yget "$C/config.yml" "${svc}['environment']['PW']" "$T/c1" && same PW pw "$T/c1" &&
	UNDOLLAR=1 yget "$C/config.yml" "${svc}['environment']['PW_NL']" "$T/c2" && same PW_NL pw_nl "$T/c2" &&
	UNDOLLAR=1 yget "$C/config.yml" "${svc}['command'][1]" "$T/c3" && same command pw "$T/c3"; then
	t_pass
else
	t_fail "compose file value differs"
fi

t_case "compose: env_file values arrive exact through docker-compose config"
if [ "$cfg_ok" = 1 ] &&
	UNDOLLAR=1 yget "$C/config.yml" "${svc}['environment']['E_PW']" "$T/e1" && same E_PW pw "$T/e1" &&
	UNDOLLAR=1 yget "$C/config.yml" "${svc}['environment']['E_NL']" "$T/e2" && same E_NL pw_nl "$T/e2" &&
	yget "$C/config.yml" "${svc}['environment']['E_AFTER']" "$T/e3" && [ "$(cat "$T/e3")" = after ]; then
	t_pass
else
	t_fail "env_file value differs"
fi

t_case "compose: project .env values arrive exact through \${VAR} substitution"
if [ "$cfg_ok" = 1 ] &&
	UNDOLLAR=1 yget "$C/config.yml" "${svc}['environment']['FROM_DOTENV']" "$T/d1" && same D_PW pw "$T/d1" &&
	UNDOLLAR=1 yget "$C/config.yml" "${svc}['environment']['FROM_DOTENV_NL']" "$T/d2" && same D_NL pw_nl "$T/d2"; then
	t_pass
else
	t_fail ".env value differs"
fi

t_case "compose: a carriage return is refused in an env file, naming the variable"
printf '{"cr": "a\\r\\nb"}' >"$T/cr.json"
printf 'X=1\nCR={{cr}}\n' >"$T/cr.env.tmpl"
if expect_rc 1 "$RENDER" "$T/cr.env.tmpl" "$T/cr.json" &&
	grep -q "cr.env.tmpl:2:4: variable 'cr' holds a carriage return" "$T/err" && [ ! -s "$T/out" ]; then
	t_pass
else
	t_fail "$(cat "$T/err")"
fi

# --- shell, run by bash and dash ------------------------------------------
printf '#!/bin/sh\nx={{pw}}\nprintf %%s "$x"\n' >"$T/assign.sh.tmpl"
printf '#!/bin/sh\nset -- {{pw_nl}} {{pw}}\nprintf %%s "$1"\n' >"$T/args.sh.tmpl"
render assign.sh.tmpl "$T/assign.sh"
render args.sh.tmpl "$T/args.sh"
for sh in bash dash; do
	t_case "shell: $sh reads the values exact"
	if "$sh" "$T/assign.sh" >"$T/s1.$sh" && same "$sh assign" pw "$T/s1.$sh" &&
		"$sh" "$T/args.sh" >"$T/s2.$sh" && same "$sh args" pw_nl "$T/s2.$sh"; then
		t_pass
	else
		t_fail "$sh read a different value"
	fi
done

# --- JavaScript, read by node ----------------------------------------------
# The literal alone as an expression, and the value in a CommonJS module
# (what ecosystem.config.js is), both written back by node as UTF-8 bytes.
printf '{{pw_js}}' >"$T/literal.js.tmpl"
printf 'module.exports = {\n  a: {{pw_js}},\n  b: [{{pw}}, {{pw_nl}}],\n  n: {{n}},\n};\n' >"$T/mod.cjs.tmpl"
"$PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); c["n"]=2; json.dump(c, open(sys.argv[1],"w"))' "$T/ctx.json"
t_case "js: node is installed"
if command -v node >/dev/null; then t_pass; else t_fail "node missing (run make deps)"; fi
t_case "js: node -e evaluating the rendered literal gives back the exact bytes"
if render literal.js.tmpl "$T/literal.js" && [ "$(wc -l <"$T/literal.js")" = 0 ] &&
	node -e 'process.stdout.write(Buffer.from(eval(require("fs").readFileSync(process.argv[1], "utf8")), "utf8"))' \
		"$T/literal.js" >"$T/j1" && same literal pw_js "$T/j1"; then
	t_pass
else
	t_fail "node read a different value"
fi
t_case "js: a module's values arrive exact through require(); numbers stay numbers"
if render mod.cjs.tmpl "$T/mod.cjs" &&
	node -e 'const m = require(process.argv[1]); const fs = require("fs"); if (m.n !== 2) process.exit(3);
		fs.writeFileSync(process.argv[2] + "a", m.a); fs.writeFileSync(process.argv[2] + "b0", m.b[0]); fs.writeFileSync(process.argv[2] + "b1", m.b[1]);' \
		"$T/mod.cjs" "$T/jm." && same a pw_js "$T/jm.a" && same b0 pw "$T/jm.b0" && same b1 pw_nl "$T/jm.b1"; then
	t_pass
else
	t_fail "node read a different value"
fi

# --- nginx: -t, then the value served by return 200 -------------------------
t_case "nginx: nginx is installed"
if command -v nginx >/dev/null; then t_pass; else t_fail "nginx missing (run make deps)"; fi

N=$T/nginx
mkdir -p "$N"
port=$(free_port)
"$PY" - "$T/ctx.json" "$N" "$port" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["prefix"], c["port"] = sys.argv[2], int(sys.argv[3])
json.dump(c, open(sys.argv[1], "w"))
EOF
cat >"$T/nginx.conf.tmpl" <<'EOF'
daemon off;
master_process off;
worker_processes 1;
pid {{prefix}}/nginx.pid;
error_log stderr;
events {
    worker_connections 16;
}
http {
    access_log off;
    client_body_temp_path {{prefix}}/body;
    proxy_temp_path {{prefix}}/proxy;
    fastcgi_temp_path {{prefix}}/fastcgi;
    uwsgi_temp_path {{prefix}}/uwsgi;
    scgi_temp_path {{prefix}}/scgi;
    server {
        listen 127.0.0.1:{{port}};
        default_type application/octet-stream;
        add_header X-Pw {{pw_nginx}};
        location / {
            return 200 {{pw_nginx}};
        }
    }
}
EOF
t_case "nginx: the rendered configuration passes nginx -t"
if render nginx.conf.tmpl "$N/nginx.conf" && nginx -e stderr -t -p "$N" -c "$N/nginx.conf" 2>"$N/t.err"; then
	t_pass
else
	t_fail "nginx -t: $(cat "$N/t.err")"
fi

t_case "nginx: the value served by return 200 is exact"
nginx -e stderr -p "$N" -c "$N/nginx.conf" 2>"$N/run.err" &
_pids+=($!)
if wait_for 10 curl -sf -D "$N/headers" -o "$N/served" "http://127.0.0.1:$port/" &&
	same served pw_nginx "$N/served"; then
	t_pass
else
	t_fail "served body differs: $(cat "$N/run.err")"
fi

t_case "nginx: the value sent by add_header is exact"
"$PY" -c '
import sys
h = open(sys.argv[1], "rb").read()
start = h.index(b"\r\nX-Pw: ") + len(b"\r\nX-Pw: ")
open(sys.argv[2], "wb").write(h[start:h.index(b"\r\n", start)])
' "$N/headers" "$N/header" 2>/dev/null
if same header pw_nginx "$N/header"; then t_pass; else t_fail "header value differs"; fi

t_case "nginx: a '\$' is refused, naming the variable and not the value"
printf 'location / {\n    return 200 {{pw}};\n}\n' >"$T/dollar-nginx.conf.tmpl"
if expect_rc 1 "$RENDER" "$T/dollar-nginx.conf.tmpl" "$T/ctx.json" &&
	grep -q "dollar-nginx.conf.tmpl:2:16: variable 'pw' holds a '\\$'" "$T/err" &&
	! grep -qF 'o#rd' "$T/err" && [ ! -s "$T/out" ]; then
	t_pass
else
	t_fail "$(cat "$T/err")"
fi

t_case "nginx: a line break is refused, naming the variable"
printf 'add_header X {{pw_nginx_nl}};\n' >"$T/nl-nginx.conf.tmpl"
if expect_rc 1 "$RENDER" "$T/nl-nginx.conf.tmpl" "$T/ctx.json" &&
	grep -q "nl-nginx.conf.tmpl:1:14: variable 'pw_nginx_nl' holds a line break" "$T/err" &&
	! grep -qF 'o#rd' "$T/err"; then
	t_pass
else
	t_fail "$(cat "$T/err")"
fi

# --- raw, and a template error through the driver ---------------------------
t_case "raw: triple mustache writes the bytes as they are"
printf '{{{pw_nl}}}' >"$T/raw.txt.tmpl"
if render raw.txt.tmpl "$T/raw.txt" && same raw pw_nl "$T/raw.txt"; then t_pass; else t_fail "raw differs"; fi

t_case "an undefined variable is an error with its line and column, not empty output"
printf 'user: admin\npassword: {{db_pasword}}\n' >"$T/typo.yml.tmpl"
if expect_rc 1 "$RENDER" "$T/typo.yml.tmpl" "$T/ctx.json" &&
	grep -q "typo.yml.tmpl:2:11: variable 'db_pasword' is not defined" "$T/err" && [ ! -s "$T/out" ]; then
	t_pass
else
	t_fail "$(cat "$T/err")"
fi
