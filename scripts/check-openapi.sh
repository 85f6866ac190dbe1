#!/usr/bin/env bash
# Validates the OpenAPI document that `visage openapi` prints (the one GET /openapi.json
# serves) with openapi-spec-validator from PyPI, in the venv of scripts/python-env.sh.
# Usage: scripts/check-openapi.sh PATH/TO/visage
set -euo pipefail
cd "$(dirname "$0")/.."
visage="${1:?usage: scripts/check-openapi.sh PATH/TO/visage}"
VALIDATOR_VERSION=0.9.0

venv="${VISAGE_PYENV:-$HOME/.cache/visage/pyenv}"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" >&2
py="$venv/bin/python"
if ! "$py" -m pip show openapi-spec-validator 2>/dev/null | grep -q "^Version: $VALIDATOR_VERSION$"; then
    "$py" -m pip install --quiet --disable-pip-version-check "openapi-spec-validator==$VALIDATOR_VERSION" >&2
fi
doc="$(mktemp --suffix=.json)"
trap 'rm -f "$doc"' EXIT
"$visage" openapi >"$doc"
"$py" - "$doc" <<'PY'
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

with open(sys.argv[1]) as f:
    doc = json.load(f)
assert doc["openapi"].startswith("3.1."), doc["openapi"]
validate(doc, cls=OpenAPIV31SpecValidator)
ops = sum(1 for item in doc["paths"].values() for m in item if m in ("get", "post", "put", "delete"))
print(f"openapi: {doc['openapi']} valid, {len(doc['paths'])} paths, {ops} operations")
PY
