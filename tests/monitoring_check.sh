#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The monitoring assets are valid: promtool checks and unit-tests the alert
# rules; the Grafana dashboard is JSON whose queries use only metrics connwatchd
# exports (listed in docs/METRICS.md).
# Usage: monitoring_check.sh SOURCE_DIR
set -euo pipefail
src=$1 dir=$1/packaging/monitoring
promtool check rules "$dir/connwatch-alerts.yml"
(cd "$dir" && promtool test rules connwatch-alerts.test.yml)
python3 - "$dir/grafana-dashboard.json" "$src/docs/METRICS.md" <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
documented = set(re.findall(r"`(connwatch_[a-z_]+)`", open(sys.argv[2]).read()))
used = {m for p in dash["panels"] for t in p["targets"] for m in re.findall(r"connwatch_[a-z_]+", t["expr"])}
unknown = used - documented
if unknown:
    sys.exit(f"FAIL: the dashboard queries undocumented metrics: {sorted(unknown)}")
print(f"PASS: dashboard uses {len(used)} documented metrics")
PY
