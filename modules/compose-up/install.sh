#!/bin/bash
# compose-up: the rendered compose project up, and healthy. Run by
# firstboot under the module contract. Exit 1 bad input, 2 a pull or `up`
# failed or the containers did not become healthy in time (retried), 3 the
# compose file is missing or refused, or there is no compose.
set -euo pipefail
umask 022

FB_PREFIX="compose-up: "
# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

COMPOSE_FILE=${COMPOSE_FILE:-/opt/stack/docker-compose.yml}
PULL=${PULL:-true}
WAIT_SECONDS=${WAIT_SECONDS:-300}

if ! [[ $COMPOSE_FILE =~ ^(/[A-Za-z0-9._-]+)+\.ya?ml$ ]] || [[ $COMPOSE_FILE =~ /\.\.?/ ]]; then
	die 1 "compose_file must be an absolute path to a .yml or .yaml file"
fi
case $PULL in true | false) ;; *) die 1 "pull must be true or false" ;; esac
if ! [[ $WAIT_SECONDS =~ ^[0-9]+$ ]] || [ "$WAIT_SECONDS" -lt 1 ] || [ "$WAIT_SECONDS" -gt 1800 ]; then
	die 1 "wait_seconds must be 1-1800"
fi

file=$R$COMPOSE_FILE
[ -f "$file" ] || die 3 "$COMPOSE_FILE is missing: render the site with imagegen (docker in site.yaml)"
find_compose || die 3 "neither 'docker compose' nor docker-compose works: run the docker module first"
# The project is named after the file's folder (stack for /opt/stack), as
# the other modules and update_server.sh name it.
compose+=(-f "$file")

"${compose[@]}" config -q || die 3 "$COMPOSE_FILE is refused by ${compose[*]:0:2} config"
mapfile -t services < <("${compose[@]}" config --services)
[ ${#services[@]} -gt 0 ] || die 3 "$COMPOSE_FILE has no services"

if [ "$PULL" = true ]; then
	say "pulling the images of ${services[*]}"
	"${compose[@]}" pull --quiet || die 2 "pulling the images failed"
fi
"${compose[@]}" up -d --remove-orphans || die 2 "${compose[*]:0:2} up failed"

# ready: every service has a container that is running and, when it has a
# health check, healthy. NOT_READY says which are not and why.
ready() {
	local ids name status health
	NOT_READY=()
	mapfile -t ids < <("${compose[@]}" ps -q 2>/dev/null)
	if [ ${#ids[@]} -lt ${#services[@]} ]; then
		NOT_READY=("${#ids[@]} of ${#services[@]} containers exist")
		return 1
	fi
	while read -r name status health; do
		[ -n "$name" ] || continue
		if [ "$status" != running ]; then
			NOT_READY+=("${name#/} is $status")
		elif [ "$health" != healthy ] && [ "$health" != none ]; then
			NOT_READY+=("${name#/} is ${health:-starting}")
		fi
	done < <(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "${ids[@]}" 2>/dev/null)
	[ ${#NOT_READY[@]} -eq 0 ]
}

say "waiting for ${services[*]} to be running and healthy (at most ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
until ready; do
	if [ $SECONDS -ge $deadline ]; then
		die 2 "not healthy after ${WAIT_SECONDS}s: ${NOT_READY[*]}"
	fi
	sleep 1
done
say "done: ${services[*]} running and healthy"
