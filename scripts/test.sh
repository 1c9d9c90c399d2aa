#!/usr/bin/env bash
# The test command: prepare the environment from the package registries, then run the test suite.
#   bash scripts/test.sh [pytest args]
# Without ComfyUI, the ComfyUI tiers are reported as skipped (scripts/env.sh says where it looks).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# The linter (ruff: every open() names its encoding, among the rules in pyproject.toml).
"$PY" -m ruff --version >/dev/null 2>&1 || "$PY" -m pip install --quiet ruff \
  || echo "== ruff could not be installed: the lint test will be SKIPPED"

# The browser tier: selenium in the venv, Debian's chromium and chromedriver (installed when running as root).
"$PY" -c "import selenium" 2>/dev/null || "$PY" -m pip install --quiet selenium \
  || echo "== selenium could not be installed: the browser tests will be SKIPPED"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get install -y -qq chromium chromium-driver || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }; } >/dev/null 2>&1 || true
  fi
  command -v chromium >/dev/null || echo "== chromium not found (apt-get install chromium chromium-driver): the browser tests will be SKIPPED"
fi

exec "$PY" -m pytest "$@"
