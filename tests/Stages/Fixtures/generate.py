#!/usr/bin/env python3
"""Writes the recorded pod watch streams used by the replay tests.

Each line is one watch event exactly as the API server sends it ({"type":..., "object":...}),
plus "offsetSeconds", the time since the recording started. Run it from this folder; the
output is committed so the tests never depend on it.
"""
import json

NODE = "krustlet-node"
rv = 100


def pod(name, ns="default", image=None, labels=None, deleting=False, uid=None, container="main"):
    global rv
    rv += 1
    meta = {
        "name": name,
        "namespace": ns,
        "uid": uid or f"{ns}-{name}-uid",
        "resourceVersion": str(rv),
        "creationTimestamp": "2026-11-20T10:00:00Z",
        "labels": labels or {"app": name},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-11-20T10:05:00Z"
        meta["deletionGracePeriodSeconds"] = 30
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Always",
            "containers": [{"name": container, "image": image or f"registry.local/{name}:1.0"}],
            "tolerations": [
                {"key": "kubernetes.io/arch", "operator": "Equal", "value": "wasm32-wasi", "effect": "NoSchedule"},
                {"key": "kubernetes.io/arch", "operator": "Equal", "value": "wasm32-wasi", "effect": "NoExecute"},
            ],
        },
        "status": {"phase": "Pending"},
    }


def line(kind, obj, offset):
    return json.dumps({"type": kind, "object": obj, "offsetSeconds": round(offset, 3)}, separators=(",", ":"))


def create_update_delete():
    global rv
    rv = 100
    out = []
    out.append(line("ADDED", pod("web"), 0.0))
    out.append(line("MODIFIED", pod("web", image="registry.local/web:1.1"), 0.5))
    out.append(line("ADDED", pod("job"), 0.75))
    out.append(line("MODIFIED", pod("web", image="registry.local/web:1.1", deleting=True), 1.0))
    out.append(line("MODIFIED", pod("job", labels={"app": "job", "tier": "batch"}), 1.25))
    out.append(line("DELETED", pod("web", image="registry.local/web:1.1", deleting=True), 1.5))
    out.append(json.dumps({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv + 1)}}}, separators=(",", ":")))
    return out


def many_pods():
    global rv
    rv = 100
    out = []
    t = 0.0
    names = [(f"ns-{i % 3}", f"pod-{i:03d}") for i in range(150)]
    for ns, name in names:
        t += 0.01
        out.append(line("ADDED", pod(name, ns), t))
    out.append('{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"truncated"')
    nouid = pod("no-uid")
    del nouid["metadata"]["uid"]
    out.append(line("ADDED", nouid, t))
    for i, (ns, name) in enumerate(names):
        t += 0.01
        if i % 3 == 0:
            out.append(line("MODIFIED", pod(name, ns, image=f"registry.local/{name}:2.0"), t))
            out.append(line("MODIFIED", pod(name, ns, image=f"registry.local/{name}:3.0"), t))
        if i % 5 == 0:
            image = f"registry.local/{name}:3.0" if i % 3 == 0 else None
            out.append(line("MODIFIED", pod(name, ns, image=image, deleting=True), t))
            out.append(line("DELETED", pod(name, ns, image=image, deleting=True), t))
    return out


def delete_during_slow_stage():
    global rv
    rv = 100
    out = []
    out.append(line("ADDED", pod("slow", image="registry.local/slow-to-pull:1.0"), 0.0))
    out.append(line("ADDED", pod("fast"), 0.1))
    out.append(line("DELETED", pod("slow", image="registry.local/slow-to-pull:1.0", deleting=True), 5.0))
    return out


for filename, lines in [
    ("create-update-delete.ndjson", create_update_delete()),
    ("many-pods.ndjson", many_pods()),
    ("delete-during-slow-stage.ndjson", delete_during_slow_stage()),
]:
    with open(filename, "w") as f:
        f.write("\n".join(lines) + "\n")
