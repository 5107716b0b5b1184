#!/usr/bin/env bash
# Installs what mpr needs on Debian 12, idempotently: apt packages (ffmpeg, PostgreSQL
# server binaries, redis-server, python3-venv; with --tests also chromium and chromium-driver,
# the HTML report's browser test) when missing, then a .venv with mpr installed editable with
# its dev extra. Re-running does nothing that is already done.
# Only the binaries are used: `mpr dev up` and the tests start their own PostgreSQL and Redis
# on free loopback ports. On a machine with systemd, apt starts Debian's own redis-server on
# 6379 (and a PostgreSQL cluster on 5432): mpr never uses them, and this script leaves them be.
set -euo pipefail
cd "$(dirname "$0")/.."
for_tests=false
[ "${1:-}" = "--tests" ] && for_tests=true

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "error: installing system packages needs root or sudo: run as root, or install: $*" >&2; exit 2
  fi
}

missing=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
id postgres >/dev/null 2>&1 || missing+=(postgresql)
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
command -v runuser >/dev/null || missing+=(util-linux)
# the HTML report's browser test (tests/integration/test_html_report.py): headless chromium
if $for_tests; then
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=.venv/.mpr-installed
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing mpr and its dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
