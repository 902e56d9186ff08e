#!/usr/bin/env bash
# An example muster script: harmless, it only writes under ${target_dir}.
#
# The header below is read by muster (see muster/domain/script_header.py):
# muster:shell bash
# muster:timeout 60
# muster:description Write a patch marker into a directory
# muster:param target_dir string required "Directory to patch"
# muster:param dry_run boolean default=true "Only print what would change"
# muster:param level choice choices=minor,major default=minor "How big a patch"
set -euo pipefail

# muster substitutes each placeholder with a quoted shell word, so use them
# where a word may stand (not inside "..."); every value is also in the
# environment as MUSTER_PARAM_<NAME>.
dir=${target_dir}
level=${level}
dry_run=${dry_run}
marker="$dir/.muster-patched"

echo "host: $(hostname)  target: $dir  level: $level"
if [ "$dry_run" = true ]; then
    echo "dry run: would write $marker"
    exit 0
fi
mkdir -p -- "$dir"
date -u +%Y-%m-%dT%H:%M:%SZ > "$marker"
echo "patched: $marker"
