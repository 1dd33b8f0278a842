#!/usr/bin/env python3
"""Reads JSON from stdin as a strict parser does, exits 1 if it is not
RFC 8259 JSON: the bytes must be UTF-8 and bare NaN/Infinity are refused.
Usage: strict_json.py doc|lines  (lines: JSON Lines, one document a line)."""
import json
import sys


def refuse(constant):
    raise ValueError("not JSON: bare " + constant)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "doc"
    text = sys.stdin.buffer.read().decode("utf-8")  # strict: bad bytes raise
    # split on "\n" only: str.splitlines would also split at U+0085 and U+2028
    docs = [d for d in text.split("\n") if d] if mode == "lines" else [text]
    if not docs or not any(d.strip() for d in docs):
        sys.exit("no JSON at all")
    for d in docs:
        json.loads(d, parse_constant=refuse)


if __name__ == "__main__":
    main()
