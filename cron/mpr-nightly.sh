#!/usr/bin/env bash
# Launcher for the nightly run, for cron or systemd.
#
#   mpr-nightly.sh [extra mpr nightly options, e.g. --metrics-file PATH]
#
# - runs under `flock -n`: when the previous run still holds the lock, it logs
#   "previous run still active" and exits 0, so overlapping schedules never pile up;
# - mpr reads the environment file itself (--env-file): nothing in it is evaluated by a shell;
# - everything goes to a dated log file, one per day, appended.
#
# Settings (environment variables of this script, all optional):
#   MPR_BIN       the mpr executable              (default: mpr on PATH)
#   MPR_ENV_FILE  the settings file               (default: /etc/mpr/mpr.env)
#   MPR_LOG_DIR   where the dated logs go          (default: /var/log/mpr)
#   MPR_LOCK_FILE the lock shared by all launches  (default: /run/lock/mpr-nightly.lock)
set -uo pipefail

mpr_bin=${MPR_BIN:-mpr}
env_file=${MPR_ENV_FILE:-/etc/mpr/mpr.env}
log_dir=${MPR_LOG_DIR:-/var/log/mpr}
lock_file=${MPR_LOCK_FILE:-/run/lock/mpr-nightly.lock}

mkdir -p "$log_dir"
log_file="$log_dir/nightly-$(date +%Y-%m-%d).log"

exec 9>>"$lock_file"
if ! flock -n 9; then
  message="$(date -Is) mpr nightly: previous run still active; this run is skipped"
  echo "$message" >>"$log_file"
  echo "$message"
  exit 0
fi

if [ ! -r "$env_file" ]; then
  echo "$(date -Is) mpr nightly: settings file $env_file not readable: set MPR_ENV_FILE" \
    | tee -a "$log_file" >&2
  exit 2
fi

echo "$(date -Is) mpr nightly: started (pid $$)" >>"$log_file"
"$mpr_bin" --env-file "$env_file" nightly "$@" >>"$log_file" 2>&1
status=$?
echo "$(date -Is) mpr nightly: finished with exit code $status" >>"$log_file"
exit "$status"
