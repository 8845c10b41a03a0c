#!/usr/bin/env bash
# Every module of the collection, installed from the built tarball, imports
# and renders its documentation with ansible-doc.
set -euo pipefail
collections=$1
modules=$(ANSIBLE_COLLECTIONS_PATH="$collections" ansible-doc -t module -l layered.eks_rds | awk '{print $1}')
[[ -n "$modules" ]] || { echo "no modules found in the built collection" >&2; exit 1; }
for m in $modules; do
  ANSIBLE_COLLECTIONS_PATH="$collections" ansible-doc -t module "$m" >/dev/null
  echo "ansible-doc $m: ok"
done
