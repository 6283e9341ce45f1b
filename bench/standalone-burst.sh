#!/usr/bin/env bash
# Usage: bench/standalone-burst.sh [N] after `dotnet build -c Release`; needs curl and python3.
# 1,000 short pods written into the standalone directory at once -> time until all Succeeded.
set -euo pipefail
N=${1:-1000}; ROOT=${WORK:-/tmp/krustlet-standalone-burst}; rm -rf $ROOT; mkdir -p $ROOT/pods $ROOT/data
KR="dotnet $(cd "$(dirname "$0")/.." && pwd)/src/Host/bin/Release/net10.0/krustlet.dll"
$KR standalone $ROOT/pods --images "$(cd "$(dirname "$0")/.." && pwd)/examples/images" --data-dir $ROOT/data --port 10291 --set Node:MaxPods=1100 > $ROOT/agent.log 2>&1 &
AGENT=$!
for i in $(seq 1 100); do [ -f $ROOT/data/pki/token ] && curl -sk -o /dev/null -H "Authorization: Bearer $(cat $ROOT/data/pki/token)" https://127.0.0.1:10291/pods && break; sleep 0.2; done
# warm: one pod through (image import + compile) first
cat > $ROOT/warm.yaml <<Y
apiVersion: v1
kind: Pod
metadata: {name: warm}
spec: {restartPolicy: Never, containers: [{name: hello, image: examples.krustlet.dev/hello:v1, imagePullPolicy: IfNotPresent}]}
Y
cp $ROOT/warm.yaml $ROOT/pods/
TOKEN=$(cat $ROOT/data/pki/token)
count() { curl -sk -H "Authorization: Bearer $TOKEN" https://127.0.0.1:10291/pods | python3 -c "import json,sys; d=json.load(sys.stdin); print(sum(1 for p in d['items'] if p['metadata']['name'].startswith('$1') and (p.get('status') or {}).get('phase')=='Succeeded'))"; }
until [ "$(count warm)" = 1 ]; do sleep 0.05; done
mkdir -p $ROOT/stage
for i in $(seq 0 $((N-1))); do sed "s/name: warm/name: burst-$i/" $ROOT/warm.yaml > $ROOT/stage/burst-$i.yaml; done
start=$(date +%s.%N)
mv $ROOT/stage/* $ROOT/pods/
# Poll the run stage's saved state (cheap) rather than /pods, whose listing of 1,000 pods takes about a
# second itself; then confirm through /pods that every pod reads Succeeded.
done_count() { grep -l '"Reason":"Completed"' $ROOT/data/state/*.json 2>/dev/null | xargs -r grep -l '"Name":"burst-' | wc -l; }
until [ "$(done_count)" -ge $N ]; do sleep 0.02; done
seen=$(date +%s.%N)
until [ "$(count burst-)" -ge $N ]; do sleep 0.05; done
python3 - "$ROOT/data/state" "$start" "$seen" "$N" <<'PY'
import json, glob, sys, datetime
root, start, seen, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
ends = []
for path in glob.glob(f"{root}/*.json"):
    state = json.load(open(path))
    if state["Name"].startswith("burst-"):
        ends.append(datetime.datetime.fromisoformat(state["Containers"][0]["Terminated"]["FinishedAt"]).timestamp())
print(f"{n} pods written -> last container Completed {(max(ends) - start) * 1000:.0f} ms after the move "
      f"(seen in the state files at {(seen - start) * 1000:.0f} ms; every pod read Succeeded through /pods afterwards)")
PY
kill $AGENT; wait $AGENT 2>/dev/null || true
