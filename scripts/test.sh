#!/usr/bin/env bash
# Installs what the tests need and runs every check: ruff, mypy --strict, import-linter, pytest.
# Run from anywhere: `bash scripts/test.sh`. As root on Debian it also installs Chromium
# (browser tests) and PostgreSQL + pgvector (storage contract tests); elsewhere those tests skip
# with a reason unless PAPERRADAR_TEST_POSTGRES_URL / a Chromium are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${PAPERRADAR_SKIP_SYSTEM:-}" != 1 ]; then
  step "system packages (chromium, postgresql)"
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  [ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
  [ -f /usr/include/postgresql/15/server/postgres.h ] || need+=(postgresql-server-dev-15 build-essential)
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if [ -x .ci/postgres.sh ] || [ -f .ci/postgres.sh ]; then
    step "PostgreSQL with pgvector for the contract tests"
    pg_env=$(bash .ci/postgres.sh)
    eval "$pg_env"
    export PAPERRADAR_TEST_POSTGRES_URL
  fi
fi

step "python packages"
python3 -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v -e "^WARNING: Running pip as" -e "Location 'file" || true

step "ruff"
python3 -m ruff check src tests benchmarks
python3 -m ruff format --check src tests benchmarks

step "mypy --strict"
python3 -m mypy src/paperradar

step "import-linter (layers of DESIGN.md)"
lint-imports --no-cache

step "pytest"
set +e
python3 -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ $status -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit $status
