#!/usr/bin/env bash
# Static checks of rollgate's CloudFormation/SAM templates, run by `make check-iac`:
# cfn-lint, `sam validate --lint`, plain `sam validate` (offline), checkov.
# Zero findings allowed; a justified exception lives next to its resource
# (Metadata.checkov.skip with a comment, or Metadata.cfn-lint ignore_checks).
# Usage: infra/checks/check-iac.sh [VENV_DIR]   (default .venv-iac)
set -uo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-.venv-iac}
SAM_BIN=$VENV/sam/bin
CHECKOV_BIN=$VENV/checkov/bin
TEMPLATES=(infra/template.yaml infra/example-app/template.yaml)
# No telemetry, no update checks, no calls to AWS or to checkov's platform.
export SAM_CLI_TELEMETRY=0 SAM_CLI_DISABLE_UPDATE_CHECK=1 AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_EC2_METADATA_DISABLED=true
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false

passed=0 failed=0
run() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok    $name"
  else
    failed=$((failed + 1)); echo "FAIL  $name"; echo "$out" | sed 's/^/      /'
  fi
}

for t in "${TEMPLATES[@]}"; do
  run "cfn-lint $t" "$SAM_BIN/cfn-lint" "$t"
  run "sam validate --lint $t" "$SAM_BIN/sam" validate --lint --template-file "$t" --region us-east-1
  run "sam validate $t" "$SAM_BIN/sam" validate --template-file "$t" --region us-east-1
  run "checkov -f $t" "$CHECKOV_BIN/checkov" --quiet --compact --skip-download --framework cloudformation -f "$t"
done
echo "check-iac: $passed ok, $failed failing"
[ "$failed" -eq 0 ]
