#!/usr/bin/env bash
# The demo: sets up everything it needs, starts the local services (real PostgreSQL and
# SeaweedFS on loopback), migrates the catalogue and checks the installation.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mpr=.venv/bin/mpr
$mpr dev up
$mpr db migrate
$mpr doctor
