#!/usr/bin/env bash
# Makes a real browser available to the console tests: Debian's chromium (installed with apt
# when missing) and Playwright for Python in a virtual environment at target/ui-venv (from
# PyPI; Playwright drives the system chromium, since browser downloads are impossible here).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  sudo_if_needed=""
  [ "$(id -u)" -ne 0 ] && sudo_if_needed="sudo"
  $sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { echo "chromium is needed by the console tests and could not be installed" >&2; exit 1; }
fi
venv="$PWD/target/ui-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import playwright" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "playwright==1.65.*"
fi
"$venv/bin/python" -c "import playwright"
