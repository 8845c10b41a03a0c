#!/usr/bin/env bash
# Run a playbook twice: the first run must succeed, the second must succeed
# with changed=0 on every host (idempotence of the whole composition).
set -euo pipefail
log_dir=${LAYERED_STACK_DIR:-.stack}/logs
mkdir -p "$log_dir"
for pass in 1 2; do
  echo "== ansible-playbook $* (run $pass)"
  ansible-playbook "$@" | tee "$log_dir/playbook-run-$pass.log"
done
recap=$(sed -n '/^PLAY RECAP/,$p' "$log_dir/playbook-run-2.log")
if ! grep -q "ok=" <<<"$recap"; then
  echo "second run printed no PLAY RECAP" >&2
  exit 1
fi
if grep -E "changed=[1-9]" <<<"$recap"; then
  echo "second run changed something: not idempotent" >&2
  exit 1
fi
echo "second run: changed=0 on every host"
