#!/usr/bin/env bash
# Build Prometheus's promtool and promqlrefs (this module's front end to
# Prometheus's PromQL parser) into test/promtool/bin, for the monitoring
# tests (test/monitoring, test/edgelab's TestDashboardAndRulesLive). This
# nested module keeps Prometheus out of edged's go.mod. -tags
# remove_all_sd leaves out the cloud service discoveries promtool never
# uses here. A cold build took ~7 min on 2 cores next to other builds
# (~1 GB of module downloads); later runs skip when the binaries are newer
# than every input.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p bin
[ -f go.sum ] || go mod tidy
if [ -x bin/promtool ] && [ -x bin/promqlrefs ] &&
  [ -z "$(find promqlrefs go.mod go.sum build.sh -newer bin/promtool 2>/dev/null)" ] &&
  [ -z "$(find promqlrefs go.mod go.sum build.sh -newer bin/promqlrefs 2>/dev/null)" ]; then
  echo "promtool up to date: test/promtool/bin"
  exit 0
fi
echo "building promtool and promqlrefs (cold: ~5-7 min)..."
start=$(date +%s)
go build -tags remove_all_sd -ldflags "-s -w" -o bin/promtool.tmp github.com/prometheus/prometheus/cmd/promtool
go build -ldflags "-s -w" -o bin/promqlrefs.tmp ./promqlrefs
mv bin/promtool.tmp bin/promtool
mv bin/promqlrefs.tmp bin/promqlrefs
echo "built test/promtool/bin in $(( $(date +%s) - start ))s"
