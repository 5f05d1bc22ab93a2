#!/usr/bin/env python3
"""deploy/kubernetes.yaml against the repository: the ConfigMap's sg.json is
sim/examples/sg.json byte for byte; its bench.json is a valid bench file
(devwire-sim --validate, with the image's /usr/share/devwire/examples read
from sim/examples) whose every instrument has a containerPort, a Service
with that port and a probe on one of its ports. The YAML is read as text
(no YAML library needed): the file keeps the layout this expects.

Usage: check_deploy.py DEVWIRE-SIM SOURCE-DIR   (exit 0 passed, 1 failed)"""
import json
import os
import re
import subprocess
import sys
import tempfile


def block(lines, key):
    """The literal block `  key: |` of the ConfigMap, dedented."""
    head = "  %s: |" % key
    if head not in lines:
        raise SystemExit("check_deploy: no '%s' in the ConfigMap" % head.strip())
    out = []
    for line in lines[lines.index(head) + 1:]:
        if line.strip() and not line.startswith("    "):
            break
        out.append(line[4:])
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + "\n"


def main():
    sim, src = sys.argv[1], os.path.abspath(sys.argv[2])
    text = open(os.path.join(src, "deploy/kubernetes.yaml")).read()
    lines = text.split("\n")
    errors = []
    sg = block(lines, "sg.json")
    want = open(os.path.join(src, "sim/examples/sg.json")).read()
    if sg != want:
        errors.append("the ConfigMap's sg.json differs from sim/examples/sg.json: copy it again")
    bench_text = block(lines, "bench.json")
    bench = json.loads(bench_text)
    with tempfile.TemporaryDirectory() as tmp:
        open(os.path.join(tmp, "sg.json"), "w").write(sg)
        local = bench_text.replace("/usr/share/devwire/examples/",
                                   os.path.join(src, "sim/examples") + "/")
        path = os.path.join(tmp, "bench.json")
        open(path, "w").write(local)
        r = subprocess.run([sim, "--validate", path], capture_output=True, text=True)
        if r.returncode != 0:
            errors.append("bench.json does not validate: " + r.stdout + r.stderr)
    container_ports = {int(p) for p in re.findall(r"^ +containerPort: (\d+)$", text, re.M)}
    service_ports = {int(p) for p in re.findall(r"^ +port: (\d+)$", text, re.M)}
    probes = {int(p) for p in re.findall(r'"--probe", "127\.0\.0\.1:(\d+)"', text)}
    ports = set()
    for d in bench:
        port = int(d["listen"].rsplit(":", 1)[1])
        ports.add(port)
        if not d["listen"].startswith("0.0.0.0:"):
            errors.append("%s listens on %s: only the pod could reach it" % (d["name"], d["listen"]))
        if port not in container_ports:
            errors.append("%s: no containerPort %d" % (d["name"], port))
        if port not in service_ports or not re.search(
                r"^  name: %s$" % re.escape(d["name"]), text, re.M):
            errors.append("%s: no Service named %s with port %d" % (d["name"], d["name"], port))
    if not probes or not probes <= ports:
        errors.append("the probes ask %s, not an instrument's port %s" % (sorted(probes), sorted(ports)))
    for e in errors:
        print("check_deploy: " + e)
    print("check_deploy: %s (%d instruments, ports %s)" %
          ("FAILED" if errors else "passed", len(bench), sorted(ports)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
