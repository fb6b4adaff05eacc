#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Derive a seccomp profile for the connwatch container from an engine's default.

The default profile of Debian 12's podman (containers-common 0.50,
/usr/share/containers/seccomp.json) allows the bpf() system call only to a container
that holds CAP_SYS_ADMIN, and answers EPERM otherwise. The kernel itself needs no
CAP_SYS_ADMIN for what connwatchd does (CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON are
enough), so with the default profile the container needs a capability far wider than
its job. This writes the same profile with one change: bpf() is allowed when the
container holds CAP_BPF (and EPERM, as before, when it does not). Every other rule is
kept as it is.

Usage: seccomp_profile.py [DEFAULT_PROFILE] > connwatch-seccomp.json
       (DEFAULT_PROFILE: /usr/share/containers/seccomp.json when not given)
then:  podman run --cap-drop=ALL --cap-add=BPF,NET_ADMIN,PERFMON \\
           --security-opt seccomp=connwatch-seccomp.json ...
docs/CONTAINER.md explains the choice; tests/podman/podman_test.sh uses it.
"""
import json
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/containers/seccomp.json"
with open(src, encoding="utf-8") as f:
    profile = json.load(f)

rules = []
for rule in profile.get("syscalls", []):
    names = rule.get("names") or ([rule["name"]] if "name" in rule else [])
    conditional = rule.get("includes", {}).get("caps") or rule.get("excludes", {}).get("caps")
    if "bpf" in names and conditional:
        # A capability-conditional rule about bpf() (the CAP_SYS_ADMIN pair): bpf
        # leaves it, the rest of the rule stays.
        rule = dict(rule)
        rule.pop("name", None)
        rule["names"] = [n for n in names if n != "bpf"]
        if not rule["names"]:
            continue
    rules.append(rule)
rules.append({"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"]}})
rules.append({"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
              "excludes": {"caps": ["CAP_BPF"]}})
profile["syscalls"] = rules
json.dump(profile, sys.stdout, indent=1)
sys.stdout.write("\n")
