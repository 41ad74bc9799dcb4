#!/usr/bin/env bash
# Installs Modal's official Python SDK into a private virtualenv for the fake-Modal conformance
# test (crates/atp-modal-fake/tests/python_sdk.rs). Exports nothing: the test finds the venv at
# the fixed path below, or at $ATP_MODAL_PYTHON when set.
set -euo pipefail
MODAL_SDK_VERSION="1.6.4"
VENV="${ATP_MODAL_VENV:-/opt/atp-ci/modal-venv}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import modal, sys; sys.exit(0 if modal.__version__ == '$MODAL_SDK_VERSION' else 1)" 2>/dev/null; then
  echo "modal $MODAL_SDK_VERSION already in $VENV"
  exit 0
fi
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "modal==$MODAL_SDK_VERSION"
"$VENV/bin/python" -c "import modal; print('modal', modal.__version__, 'in $VENV')"
