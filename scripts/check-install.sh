#!/usr/bin/env bash
# Check an environment made by scripts/install-locked.sh, as the image and CI use it:
#
#   scripts/check-install.sh VENV
#
# Runs the installed `tlog-monitor` (not the source tree: it runs from an empty directory)
# on what needs no network: --version, check-config on the shipped configurations, and the
# database migrations packaged in the wheel. Fails if a development tool is installed.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV" >&2
    exit 2
fi
venv=$(cd "$1" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli=$venv/bin/tlog-monitor
python=$venv/bin/python

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() {
    echo "check-install: $*" >&2
    exit 1
}

version=$("$cli" --version)
expected=$("$python" -c 'import monitor; print(monitor.__version__)')
[[ $version == "tlog-monitor $expected" ]] || fail "--version says '$version', package $expected"
echo "$version"

location=$("$python" -c 'import monitor; print(monitor.__file__)')
[[ $location == "$venv"/* ]] || fail "monitor imported from $location, not from $venv"

# The image's default configuration, the repository's, and the reference of every option
# (whose secrets come from the environment: dummy values of the right form here).
"$cli" check-config "$root/deploy/monitor.yaml" >/dev/null
"$cli" check-config "$root/config/monitor.yaml" >/dev/null
SOC_WEBHOOK_SECRET=whsec_Y2hlY2staW5zdGFsbCB3ZWJob29rIHNlY3JldA== \
    SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/check \
    PAGERDUTY_ROUTING_KEY=check-install-routing-key \
    ALERTMANAGER_URL=http://alertmanager.invalid:9093 \
    TLOG_DB_PASSWORD=check-install-password \
    API_TOKEN_SHA256=0000000000000000000000000000000000000000000000000000000000000000 \
    "$cli" check-config "$root/config/monitor.example.yaml" >/dev/null
echo "check-config: deploy/monitor.yaml, config/monitor.yaml, config/monitor.example.yaml OK"

# The migrations travel inside the wheel (monitor/_migrations), not beside a checkout.
db="sqlite+aiosqlite:///$work/check.db"
"$cli" db upgrade --db "$db" >/dev/null
head=$("$python" -c 'from monitor.storage.engine import head_revision; print(head_revision())')
current=$("$cli" db current --db "$db")
[[ $current == *"$head"* ]] || fail "db current says '$current', expected revision $head"
echo "migrations: upgraded an empty SQLite database to $head"

# The console's templates and static files travel inside the wheel as package data.
"$python" -I -c '
from monitor.console.render import STATIC_FILES, environment, static_file
names = set(environment().list_templates())
assert {"base.html", "findings.html", "entry.html", "logs.html"} <= names, names
for name in STATIC_FILES:
    static_file(name)
' || fail "the console's templates or static files are not installed"
echo "console: templates and static files installed"

# Runtime only: no test, lint or type-checking tool, and no installer.
present=$("$python" -I -c '
import importlib.util
dev = ("pytest", "_pytest", "mypy", "hypothesis", "schemathesis", "selenium", "ruff", "pip", "uv")
print(" ".join(name for name in dev if importlib.util.find_spec(name) is not None))
')
[[ -z $present ]] || fail "development or installer modules in $venv: $present"
for tool in pytest mypy ruff pip uv; do
    [[ ! -e $venv/bin/$tool ]] || fail "$venv/bin/$tool is installed"
done
echo "runtime only: no pytest, mypy, hypothesis, schemathesis, selenium, ruff, pip or uv"
