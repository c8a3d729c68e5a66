#!/usr/bin/env bash
# The sandbox demo: local emulators, then plan → apply (the model published and loaded) → generate → plan again,
# which must report no changes.
# Usage: examples/sandbox-demo.sh [SPEC]   (default specs/gptj-v5e-2x2.yaml; run from the repository root; MODEL and
# PROMPT choose what generate asks)
# The sandbox is this checkout's (.sandbox/state), unless SAXCTL_SANDBOX_DIR names another state dir.
set -euo pipefail
spec=${1:-specs/gptj-v5e-2x2.yaml}
saxctl=${SAXCTL:-.venv/bin/saxctl}
chosen_state_dir=${SAXCTL_SANDBOX_DIR:-}

echo "==> saxctl sandbox up (local emulators; the first run builds them from Go modules)"
eval "$("$saxctl" sandbox up)"

# No model hub here: unless GPTJ_CHECKPOINT names your HF GPT-J directory, use a small random GPT-J, written into the
# sandbox's state, where `saxctl sandbox env` finds it and exports GPTJ_CHECKPOINT for every later shell.
if [ -z "${GPTJ_CHECKPOINT:-}" ]; then
  echo "==> saxctl sandbox sample-checkpoint"
  "$saxctl" sandbox sample-checkpoint
  eval "$("$saxctl" sandbox env)"
fi

echo "==> saxctl validate $spec"
"$saxctl" validate "$spec"

echo "==> saxctl plan $spec"
"$saxctl" plan "$spec"

echo "==> saxctl apply --auto-approve $spec"
"$saxctl" apply --auto-approve "$spec"

# The tutorial's last step: ask the published model (through the Sax HTTP server's /generate, by port-forward).
model=${MODEL:-gptj4bf16bs32}
prompt=${PROMPT:-"Below is an instruction that describes a task. Write a response that completes the request."}
echo "==> saxctl generate $spec $model \"$prompt\""
"$saxctl" generate "$spec" "$model" "$prompt"

echo "==> saxctl plan --detailed-exitcode $spec (expect: no changes, exit 0)"
"$saxctl" plan --detailed-exitcode "$spec"

# The closing lines are commands to paste into a new shell: absolute paths, so they work from any directory, and plain
# `saxctl` only when a new shell finds this one on PATH (`make install`; an activated venv is this shell's alone).
here=$(pwd -P)
command=$(readlink -f "$saxctl")
on_path=$(command -v saxctl 2>/dev/null || true)
if [ -n "$on_path" ] && [ "$(dirname "$on_path")" != "$(dirname "$command")" ] && [ "$(readlink -f "$on_path")" = "$command" ]; then
  command=saxctl
else
  command=$(printf %q "$command")
fi
point=""
if [ -n "$chosen_state_dir" ]; then point="SAXCTL_SANDBOX_DIR=$(printf %q "$chosen_state_dir") "; fi
echo
echo "Done. The sandbox keeps running. In another shell, point it at the sandbox and look around:"
echo "  cd $(printf %q "$here")"
echo "  eval \"\$(${point}$command sandbox env)\""
echo "  $command status $spec"
echo "  $command plan $spec"
echo "  $command destroy --force-delete-buckets $spec     # asks first, then deletes what the demo created, the Sax root too"
echo "Stop the sandbox with: ${point}$command sandbox down"
if [ "$command" != saxctl ]; then
  echo "To type plain \`saxctl\`: make install (links it into ~/.local/bin), or: source .venv/bin/activate"
fi
