#!/usr/bin/env python3
"""scripts/skipped_tests.py JUNIT... - the tests ctest reported as skipped in
the JUnit files `ctest --output-junit` wrote, counted by reason: the first
"skipped: REASON" line of each test's output (Catch2's warning, a shell
test's echo), else ctest's own message."""
import collections
import re
import sys
import xml.etree.ElementTree as ET



def skip_reason(output):
    """The text after the first "skipped:", with the indented lines that
    continue it (Catch2 wraps a warning at 80 columns)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)skipped:\s*(.+?)\s*$", line, re.IGNORECASE)
        if not m:
            continue
        words = [m.group(2)]
        indent = m.group(1)
        for more in lines[i + 1:] if indent else []:
            if not more.startswith(indent) or not more.strip():
                break
            words.append(more.strip())
        return " ".join(words)
    return None


reasons = collections.Counter()
names = collections.defaultdict(list)
for path in sys.argv[1:]:
    for case in ET.parse(path).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is None:
            continue
        reason = skip_reason(case.findtext("system-out") or "")
        reason = reason or skipped.get("message") or "no reason given"
        reasons[reason] += 1
        names[reason].append(case.get("name"))

print(f"skipped tests: {sum(reasons.values())}")
for reason, count in reasons.most_common():
    print(f"  {count:3d}  {reason}")
    for name in names[reason]:
        print(f"         {name}")
