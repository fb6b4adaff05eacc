#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The commands the documentation shows are run, or claimed by a test that runs them.

Every fenced block in README.md and docs/*.md carries an info string that says what
it is and, for shell, who runs it:

  ```text                      output, diagrams, protocol transcripts: not commands
  ```ini                       a connwatchd.conf fragment: every key must be one of
                               connwatchd's long options (the configuration keys)
  ```yaml                      a Prometheus configuration: `promtool check config`
  ```yaml operator: REASON     another YAML (a configuration management's task): not run
  ```sh docs-check             run here, by this script (the rules below)
  ```sh test=tests/PATH.sh     claimed by that test script: each command (modulo
                               placeholders, see claimed()) appears in it, in order
                               of its words, on one of its lines, and the script is
                               registered with ctest; a claim that goes stale fails
  ```sh operator: REASON       an example for an operator's own machine that cannot
                               run here (a real package repository, a real host's
                               systemd); the reason is required

A block without an info string, or a shell block without one of those tags, fails.

README.md's commands (its shell blocks and inline spans together) must show every
option of connwatchd's and connwatchctl's --help and every connwatchctl subcommand:
the README is where a newcomer finds the whole interface.

In every shell block, whatever its tag:
  - `make TARGET [VAR=VALUE]` is checked with `make -q`: the target exists (exit 2 is
    "no rule", 0 and 1 are "exists, up to date or not"); -q runs no recipe, not even
    the $(MAKE) lines -n would run;
  - each `--option` given to connwatchd or connwatchctl must be in that binary's
    --help (connwatchctl: the global --help and the subcommand's), also where another
    command runs them (`podman exec NAME connwatchctl ...`, the image's arguments
    after `podman run ... connwatch`).
And in inline code spans in the prose, `connwatchd --x`, `connwatchctl sub --y` and
`make TARGET`: the same.

A `docs-check` block's commands are run:
  - connwatchd ARGS       as `connwatchd ARGS --check-config` against the shipped
                          packaging/connwatchd.conf unless ARGS name a --config (a
                          synopsis's `[...]` is dropped, `a|b|c` becomes `a`);
  - connwatchctl ARGS     written to --ctl-out for docs_check.sh, which runs them in
                          order against a throwaway daemon on a veth pair of its own;
  - man ARGS, promtool ARGS   as they are, from the source directory;
  - anything else fails: tag the block with the test that runs it, or as operator.

Usage: docs_check.py SOURCE_DIR CONNWATCHD CONNWATCHCTL --ctl-out FILE
Prints one PASS/FAIL line per block; exits 1 when any failed.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^(\s*)```(.*)$")
FLAG = re.compile(r"^--[a-z0-9][a-z0-9-]*")
CTL_GLOBAL = set()


def doc_files(src):
    files = [os.path.join(src, "README.md")]
    d = os.path.join(src, "docs")
    files += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".md"))
    return files


def blocks(path):
    """(line number, info string, [lines]) for each fenced block."""
    out, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = FENCE.match(line.rstrip("\n"))
            if cur is None:
                if m:
                    cur = (n, m.group(2).strip(), [], len(m.group(1)))
            elif m and not m.group(2).strip():
                out.append(cur[:3])
                cur = None
            else:
                cur[2].append(line.rstrip("\n")[cur[3]:] if line[:cur[3]].isspace() else line.rstrip("\n"))
    if cur is not None:
        out.append((cur[0], "UNCLOSED", cur[2]))
    return out


def strip_comment(line):
    """The line without a shell comment (a # outside quotes, at a word's start)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def commands(lines):
    """The commands of a shell block: comments dropped, `\\` continuations joined, and
    an indented line continuing the command above it (the README's synopsis)."""
    cmds = []
    cont = False
    for raw in lines:
        line = strip_comment(raw)
        if not line.strip():
            cont = False
            continue
        joined = line.rstrip("\\").strip()
        if cmds and (cont or raw[:1].isspace()):
            cmds[-1] += " " + joined
        else:
            cmds.append(joined)
        cont = line.endswith("\\")
    return cmds


def split(cmd):
    try:
        return shlex.split(cmd)
    except ValueError:
        return cmd.split()


def program(words):
    return os.path.basename(words[0]) if words else ""


HELP = {}


def help_text(binary, *sub):
    key = (binary,) + sub
    if key not in HELP:
        r = subprocess.run([binary, *sub, "--help"], capture_output=True, text=True, timeout=30)
        HELP[key] = r.stdout + r.stderr
    return HELP[key]


def known_flags(text):
    return set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", text))


def embedded(words):
    """The connwatchd/connwatchctl command inside another one: `podman exec NAME
    connwatchctl ...`, `nsenter ... connwatchd ...`, and `podman run ... connwatch ARGS`
    (the image, whose entry point is connwatchd: docs/CONTAINER.md)."""
    for i, w in enumerate(words[1:], 1):
        if os.path.basename(w) in ("connwatchd", "connwatchctl"):
            return words[i:]
    if program(words) in ("podman", "docker") and "run" in words and "connwatch" in words:
        return ["connwatchd"] + words[len(words) - words[::-1].index("connwatch"):]
    return None


def check_flags(words, bins, errors):
    """Every --option of a connwatchd/connwatchctl command is in that binary's --help."""
    inner = embedded(words) if program(words) not in ("connwatchd", "connwatchctl") else None
    if inner:
        words = inner
    prog = program(words)
    if prog not in ("connwatchd", "connwatchctl"):
        return
    flags = known_flags(help_text(bins[prog]))
    if prog == "connwatchctl":
        sub = next((w for w in words[1:] if not w.startswith("-")), None)
        if sub and re.fullmatch(r"[a-z][a-z-]*", sub):
            flags |= known_flags(help_text(bins[prog], sub))
    for w in words[1:]:
        m = FLAG.match(w.lstrip("["))  # a synopsis's optional `[--x ...]` too
        if m and m.group(0) not in flags:
            errors.append(f"{prog} has no option {m.group(0)} (not in its --help)")


def shown_flags(words, shown):
    """Adds the --options a connwatchd/connwatchctl command shows to shown[prog]."""
    inner = embedded(words) if program(words) not in ("connwatchd", "connwatchctl") else None
    if inner:
        words = inner
    prog = program(words)
    if prog in ("connwatchd", "connwatchctl"):
        for w in words[1:]:
            m = FLAG.match(w.lstrip("["))
            if m:
                shown.setdefault(prog, set()).add(m.group(0))
            elif prog == "connwatchctl" and re.fullmatch(r"[a-z][a-z-]*", w):
                shown.setdefault("connwatchctl sub", set()).add(w)


def subcommands(text):
    """The subcommands a CLI11 --help lists, one an indented line after `Subcommands:`."""
    subs, on = [], False
    for line in text.splitlines():
        if line.startswith("Subcommands:"):
            on = True
        elif on and line.strip():
            if not line[:1].isspace():
                break
            subs.append(line.split()[0])
    return subs


def readme_coverage(bins, shown):
    """The README is the newcomer's one page: its commands (blocks and inline spans) show
    every option of both binaries (--help aside) and every connwatchctl subcommand."""
    errors = []
    for prog in ("connwatchd", "connwatchctl"):
        want = known_flags(help_text(bins[prog]))
        subs = subcommands(help_text(bins[prog])) if prog == "connwatchctl" else []
        for sub in subs:
            want |= known_flags(help_text(bins[prog], sub))
            if sub not in shown.get("connwatchctl sub", set()):
                errors.append(f"README.md shows no `connwatchctl {sub}` (a subcommand of its --help)")
        for flag in sorted(want - {"--help"} - shown.get(prog, set())):
            errors.append(f"README.md does not show {prog} {flag} (in its --help)")
    return errors


def check_make(words, src, errors):
    if program(words) != "make":
        return
    args = [w for w in words[1:] if not w.startswith("-")]
    # Not the outer make's flags (make test runs this through ctest): no jobserver, no -n.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-q", "-C", src, *args], capture_output=True, text=True,
                       timeout=60, env=env)
    if r.returncode not in (0, 1):
        errors.append(f"make -q {' '.join(args)}: {(r.stderr or r.stdout).strip()[-300:]}")


def desynopsis(words):
    """A synopsis made a command: optional `[...]` parts dropped, `a|b|c` is `a`."""
    out, depth = [], 0
    for w in words:
        if w.startswith("["):
            depth += 1
        if depth == 0 and w != "...":
            out.append(w.split("|")[0] if "|" in w and not w.startswith("-") else w)
        if w.endswith("]"):
            depth = max(0, depth - 1)
    return out


def run_block(cmds, src, bins, ctl_cmds, errors):
    for cmd in cmds:
        words = split(cmd)
        prog = program(words)
        if prog == "make":
            continue  # checked for every block
        if prog == "connwatchd":
            args = desynopsis(words[1:])
            if not {"--help", "--version", "--check-config"} & set(args):
                args.append("--check-config")
            if "--config" not in args:
                args += ["--config", os.path.join(src, "packaging/connwatchd.conf")]
            r = subprocess.run([bins["connwatchd"], *args], cwd=src, capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                errors.append(f"`{cmd}` (run as connwatchd {' '.join(args)}) exited {r.returncode}: "
                              f"{(r.stderr or r.stdout).strip()[-300:]}")
        elif prog == "connwatchctl":
            ctl_cmds.append(desynopsis(words[1:]))
        elif prog in ("man", "promtool"):
            env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80")
            r = subprocess.run(words, cwd=src, capture_output=True, text=True, timeout=60, env=env)
            if r.returncode != 0:
                errors.append(f"`{cmd}` exited {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
        else:
            errors.append(f"docs-check does not run `{prog}`: tag the block with the test that "
                          "runs it (test=...), or operator: with the reason")


# ---- claims --------------------------------------------------------------------------

ADDR = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F]*:[0-9a-fA-F:.]*)(/\d{1,3})?$")


def placeholder(word):
    """A doc word that stands for any value in a test: an address or prefix, a
    duration or number, an UPPER-CASE name, a package file, `...`/`…`."""
    return bool(ADDR.match(word) or re.fullmatch(r"\d+[smhd]?", word)
                or re.fullmatch(r"[A-Z][A-Z0-9_]+", word) or word in ("...", "…")
                or re.search(r"\.(deb|rpm)$", word))


def words_of_script(path):
    """The script's logical lines (continuations joined), each as words with quotes
    and shell variables' braces removed."""
    lines, cur = [], ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            lines.append(cur + line)
            cur = ""
    return [re.sub(r"[\"']", "", l).split() for l in lines]


def same(doc, test):
    if doc == test:
        return True
    if doc == "apt" and test == "apt-get":  # the same command for a script
        return True
    return placeholder(doc) and not test.startswith("-")


def same_program(doc, test):
    """A test runs the program by name, by path, or through a variable ("$CTL")."""
    return (doc == test or test.endswith("/" + doc) or same(doc, test)
            or re.fullmatch(r"\$\{?\w+\}?", test) is not None)


def claimed(words, script_lines):
    """The doc command's words appear in order (others may sit between them: a test's
    extra options, its `in_ct` prefix) on one line of the script."""
    doc = [re.sub(r"[\"']", "", w) for w in words]
    for line in script_lines:
        i = 0
        for w in line:
            if i < len(doc) and (same_program(doc[0], w) if i == 0 else same(doc[i], w)):
                i += 1
        if i == len(doc):
            return True
    return False


def registered(src, rel):
    """Named by a CMakeLists.txt under tests/: literally, or, for
    tests/integration/NAME_test.sh, as cw_integration_test(NAME ...)."""
    name = os.path.basename(rel)
    m = re.fullmatch(r"(\w+)_test\.sh", name)
    helper = re.compile(r"cw_integration_test\(\s*" + re.escape(m.group(1)) + r"\b") if m else None
    for root, _, files in os.walk(os.path.join(src, "tests")):
        if "CMakeLists.txt" in files:
            with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
                text = f.read()
            if name in text:
                return True
            if helper and os.path.basename(root) == "integration" and helper.search(text):
                return True
    return False


# ---- inline spans ----------------------------------------------------------------------

def inline_commands(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for m in re.finditer(r"`((?:connwatch(?:d|ctl)|make) [^`]+)`", text):
        yield text[:m.start()].count("\n") + 1, m.group(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("connwatchd")
    ap.add_argument("connwatchctl")
    ap.add_argument("--ctl-out", required=True)
    a = ap.parse_args()
    src = os.path.abspath(a.src)
    bins = {"connwatchd": os.path.abspath(a.connwatchd), "connwatchctl": os.path.abspath(a.connwatchctl)}
    config_keys = known_flags(help_text(bins["connwatchd"]))
    ctl_cmds = []
    passed = failed = 0
    counts = {}

    shown = {}  # what README.md's commands show, for readme_coverage()
    for path in doc_files(src):
        rel = os.path.relpath(path, src)
        for line, info, lines in blocks(path):
            errors = []
            lang, _, tag = info.partition(" ")
            tag = tag.strip()
            kind = lang if lang != "sh" else (tag.split("=")[0].split(":")[0] or "untagged")
            if info == "UNCLOSED":
                errors.append("the block is never closed")
            elif not lang:
                errors.append("no info string: say what the block is (text, ini, yaml, or sh with "
                              "docs-check / test=PATH / operator: REASON)")
            elif lang == "text":
                pass
            elif lang == "ini":
                for l in lines:
                    l = l.split("#")[0].strip()
                    if l:
                        key = l.split("=")[0].strip()
                        if "--" + key not in config_keys:
                            errors.append(f"'{key}' is not a connwatchd option, so not a configuration key")
            elif lang in ("yaml", "ini", "text") and tag and not tag.startswith("operator:"):
                errors.append(f"a {lang} block tagged '{tag}': only operator: REASON is known")
            elif lang == "yaml" and tag:
                if len(tag[len("operator:"):].strip()) < 10:
                    errors.append("operator: needs the reason it cannot run here")
            elif lang == "yaml":
                with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as t:
                    t.write("\n".join(lines) + "\n")
                r = subprocess.run(["promtool", "check", "config", "--syntax-only", t.name],
                                   capture_output=True, text=True, timeout=60)
                os.unlink(t.name)
                if r.returncode != 0:
                    errors.append(f"promtool check config: {(r.stderr or r.stdout).strip()[-300:]}")
            elif lang == "sh":
                cmds = commands(lines)
                for cmd in cmds:
                    words = split(cmd)
                    check_flags(words, bins, errors)
                    check_make(words, src, errors)
                    if rel == "README.md":
                        shown_flags(words, shown)
                if tag == "docs-check":
                    run_block(cmds, src, bins, ctl_cmds, errors)
                elif tag.startswith("test="):
                    script = tag[5:].strip()
                    full = os.path.join(src, script)
                    if not os.path.isfile(full):
                        errors.append(f"{script} does not exist")
                    else:
                        if not registered(src, script):
                            errors.append(f"{script} is not registered with ctest (no CMakeLists.txt names it)")
                        sl = words_of_script(full)
                        for cmd in cmds:
                            words = split(cmd)
                            if program(words) == "make":
                                continue
                            if not claimed(words, sl):
                                errors.append(f"`{cmd}` does not appear in {script} (stale claim?)")
                elif tag.startswith("operator:"):
                    if len(tag[len("operator:"):].strip()) < 10:
                        errors.append("operator: needs the reason it cannot run here")
                else:
                    errors.append(f"shell block tagged '{tag}': expected docs-check, test=PATH or operator: REASON")
            else:
                errors.append(f"unknown block type '{lang}' (text, ini, yaml or sh)")
            counts[kind] = counts.get(kind, 0) + 1
            where = f"{rel}:{line} ({info or 'untagged'})"
            if errors:
                failed += 1
                for e in errors:
                    print(f"FAIL: {where}: {e}")
            else:
                passed += 1
                print(f"PASS: {where}")
        for n, cmd in inline_commands(path):
            errors = []
            check_flags(split(cmd), bins, errors)
            check_make(split(cmd), src, errors)
            if rel == "README.md":
                shown_flags(split(cmd), shown)
            for e in errors:
                failed += 1
                print(f"FAIL: {rel}:{n} `{cmd}`: {e}")

    for e in readme_coverage(bins, shown):
        failed += 1
        print(f"FAIL: {e}")

    with open(a.ctl_out, "w", encoding="utf-8") as f:
        for c in ctl_cmds:
            f.write(json.dumps(c) + "\n")
    print("blocks: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
