#!/usr/bin/env bash
# The demo: a lab of 1 manager and 2 workers with `web` running 3 replicas of demo/web:v1.
# Idempotent: an existing lab is reused and an existing `web` is scaled back to 3.
# SKIFF_LAB picks the lab name (default "lab"); SKIFF_HOME the CLI's config directory.
set -euo pipefail
cd "$(dirname "$0")/.."
skiff=bin/skiff
lab="${SKIFF_LAB:-lab}"

"$skiff" lab up --name "$lab" --managers 1 --workers 2
if "$skiff" service inspect web >/dev/null 2>&1; then
  "$skiff" service scale web=3
else
  "$skiff" service create --name web --replicas 3 demo/web:v1
fi
echo
"$skiff" service ps web
echo
echo "Each task answers HTTP on its address, from inside the host it runs on. For example:"
"$skiff" service ps web --format json | node -e '
  const lab = process.argv[1];
  const tasks = JSON.parse(require("fs").readFileSync(0, "utf8")).filter((t) => t.state === "running");
  for (const t of tasks) console.log(`  bin/skiff lab exec --name ${lab} ${t.hostname} -- busybox wget -qO- http://${t.addresses[0]}/`);
' "$lab"
echo
echo "More: bin/skiff node ls | bin/skiff service scale web=6 | bin/skiff lab status | bin/skiff lab down"
