#!/usr/bin/env bash
# Prepares a host for the nightly run as cron/crontab.example and cron/mpr-nightly.service
# expect it, idempotently (re-running changes nothing that is already right):
#
#   - the system user and group `mpr` (no login shell, home /var/lib/mpr);
#   - the settings file /etc/mpr/mpr.env, copied from .env.example when it does not exist yet
#     (an existing one is never overwritten), owner mpr, mode 0600, in /etc/mpr (mode 0750);
#   - the log folder /var/log/mpr (owner mpr, mode 0750);
#   - the node_exporter textfile folder /var/lib/prometheus/node-exporter, writable by the
#     group mpr (mpr writes mpr.prom there atomically, through a temporary file beside it).
#
# Usage (as root, from a copy of the repository, normally /opt/mpr):
#   scripts/install.sh              do it
#   scripts/install.sh --dry-run    print what it would do, change nothing
#   scripts/install.sh --root DIR   create the files and folders under DIR (a staging tree or
#                                   a test), without creating the user or changing owners
# It installs neither mpr itself (scripts/bootstrap.sh) nor the cron or systemd files (README
# "Nightly operation" has the commands). No argument is ever evaluated by a shell.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
root=""
dry_run=false
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --root)
      [ $# -ge 2 ] || { echo "error: --root needs a folder" >&2; exit 2; }
      root=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see scripts/install.sh --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$root" ]; then
  case "$root" in
    /*) ;;
    *) echo "error: --root $root: give an absolute path" >&2; exit 2 ;;
  esac
  [ -d "$root" ] || { echo "error: --root $root: no such folder" >&2; exit 2; }
  root=${root%/}
elif [ "$(id -u)" -ne 0 ] && ! $dry_run; then
  echo "error: run as root (it creates the user mpr and folders under /etc and /var), or" \
       "use --dry-run or --root DIR" >&2
  exit 2
fi

user=mpr
etc_dir="$root/etc/mpr"
env_file="$etc_dir/mpr.env"
log_dir="$root/var/log/mpr"
metrics_dir="$root/var/lib/prometheus/node-exporter"
owners=true
[ -z "$root" ] || owners=false

run() {  # a command as an argument list: printed in a dry run, else run
  if $dry_run; then printf 'would run:'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}

if $owners && ! id -u "$user" >/dev/null 2>&1; then
  run useradd --system --user-group --home-dir /var/lib/mpr --create-home \
      --shell /usr/sbin/nologin --comment "mpr nightly import and transcode" "$user"
fi

# folder MODE OWNER GROUP: created when missing; mode (and owners, unless --root) set each run
folder() {
  run mkdir -p "$1"
  run chmod "$2" "$1"
  if $owners; then run chown "$3:$4" "$1"; fi
}

folder "$etc_dir" 0750 root "$user"
if [ ! -e "$env_file" ]; then
  run cp "$repo/.env.example" "$env_file"
  $dry_run || echo "created $env_file from .env.example: fill in its settings"
fi
run chmod 0600 "$env_file"
if $owners; then run chown "$user:$user" "$env_file"; fi

folder "$log_dir" 0750 "$user" "$user"

# the textfile folder may belong to the node_exporter package: only its group and group
# write bit are changed, so node_exporter keeps reading it and mpr can write to it
run mkdir -p "$metrics_dir"
run chmod g+rwx,o+rx "$metrics_dir"
if $owners; then run chgrp "$user" "$metrics_dir"; fi

$dry_run || echo "mpr host layout ready: $env_file, $log_dir, $metrics_dir"
