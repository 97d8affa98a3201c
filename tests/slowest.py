"""Prints the slowest tests of a cargo-nextest JUnit report, slowest first, and how many
tests ran. Usage: python3 tests/slowest.py JUNIT_XML [COUNT]"""
import sys
import xml.etree.ElementTree as ET

if len(sys.argv) < 2:
    sys.exit("usage: slowest.py JUNIT_XML [COUNT]")
path = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as e:
    sys.exit(f"slowest.py: cannot read the JUnit report {path}: {e}")
cases = []
for suite in root.iter("testsuite"):
    for case in suite.iter("testcase"):
        cases.append((float(case.get("time", "0")), f"{suite.get('name')} {case.get('name')}"))
cases.sort(reverse=True)
for took, name in cases[:count]:
    print(f"{took:6.0f}  {name}")
print(f"({len(cases)} tests ran under nextest)")
