#!/usr/bin/env bash
# The test command: sets up everything it needs, then runs lint and the whole suite.
# The suite starts its own PostgreSQL, SeaweedFS and Redis on free loopback ports and stops
# them; its browser test drives Debian's headless chromium (bootstrap --tests installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --tests
.venv/bin/ruff check src tests bench
.venv/bin/mypy src
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=10 "$@"
