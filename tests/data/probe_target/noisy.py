"""Floods stdout and stderr while importing."""

import sys

for i in range(20000):
    print(f"out {i:06d} " + "x" * 40)
    print(f"err {i:06d} " + "y" * 40, file=sys.stderr)
print("the last words", file=sys.stderr)
