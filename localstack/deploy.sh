#!/usr/bin/env bash
# Deploy the Hemera CDK app (infra/) to LocalStack with the pinned cdklocal.
#
# Needs a running LocalStack. Two limits of LocalStack decide what works:
#   - IoT Core (the telemetry topic rule and the device policy) is only in LocalStack's paid tier
#     (set LOCALSTACK_AUTH_TOKEN before starting it); the free edition fails on AWS::IoT::*.
#   - Lambda functions run in Docker containers, so LocalStack itself must run with Docker.
# Without either, use the offline local cloud instead: `hemera local up` (see ARCHITECTURE.md).
#
# Usage: localstack/deploy.sh [extra cdklocal deploy arguments]
#   LOCALSTACK_ENDPOINT  LocalStack URL (default http://localhost:4566)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
endpoint="${LOCALSTACK_ENDPOINT:-http://localhost:4566}"
cdklocal="${repo_root}/node_modules/.bin/cdklocal"

if [[ ! -x "${cdklocal}" ]]; then
  echo "error: ${cdklocal} not found; run 'npm ci' in ${repo_root} first." >&2
  exit 1
fi

if ! health="$(curl --silent --show-error --fail --max-time 5 "${endpoint}/_localstack/health")"; then
  echo "error: LocalStack does not answer on ${endpoint}/_localstack/health." >&2
  echo "Start it first (it needs Docker), e.g. 'localstack start -d', or set LOCALSTACK_ENDPOINT." >&2
  exit 1
fi
if ! grep -q '"iot"' <<<"${health}"; then
  echo "warning: this LocalStack reports no IoT service; AWS::IoT::* resources need the paid tier." >&2
fi

# cdklocal points the CDK CLI at this endpoint; LocalStack accepts any credentials.
export AWS_ENDPOINT_URL="${endpoint}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export CDK_DISABLE_VERSION_CHECK=true

cd "${repo_root}"
"${cdklocal}" bootstrap
"${cdklocal}" deploy --require-approval never "$@"
