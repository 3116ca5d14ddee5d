#!/usr/bin/env bash
# tests/e2e/health_keepalived.sh: tests/e2e/health.sh with its checks from a
# keepalived.conf (dlvs run --keepalived): the same behaviour is expected.
HEALTH_FROM=keepalived exec bash "$(dirname "${BASH_SOURCE[0]}")/health.sh" "$@"
