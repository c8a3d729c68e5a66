#!/usr/bin/env bash
# The sandbox demo: local emulators, then plan → apply → plan again, which must report no changes.
# Usage: examples/sandbox-demo.sh [SPEC]   (default specs/gptj-v5e-2x2.yaml; run from the repository root)
set -euo pipefail
spec=${1:-specs/gptj-v5e-2x2.yaml}
saxctl=${SAXCTL:-.venv/bin/saxctl}

echo "==> saxctl sandbox up (local emulators; the first run builds them from Go modules)"
eval "$("$saxctl" sandbox up)"

# No model hub here: unless GPTJ_CHECKPOINT names your HF GPT-J directory, use a small random GPT-J.
if [ -z "${GPTJ_CHECKPOINT:-}" ]; then
  GPTJ_CHECKPOINT=$PWD/.sandbox/demo/gptj-sample
  if [ ! -f "$GPTJ_CHECKPOINT/config.json" ]; then
    echo "==> saxctl sandbox sample-checkpoint $GPTJ_CHECKPOINT"
    "$saxctl" sandbox sample-checkpoint "$GPTJ_CHECKPOINT"
  fi
fi
export GPTJ_CHECKPOINT

echo "==> saxctl validate $spec"
"$saxctl" validate "$spec"

echo "==> saxctl plan $spec"
"$saxctl" plan "$spec"

echo "==> saxctl apply --auto-approve $spec"
"$saxctl" apply --auto-approve "$spec"

echo "==> saxctl plan --detailed-exitcode $spec (expect: no changes, exit 0)"
"$saxctl" plan --detailed-exitcode "$spec"

echo
echo "Done. The sandbox keeps running: point your shell at it with"
echo "  eval \"\$($saxctl sandbox env)\""
echo "and stop it with: $saxctl sandbox down"
