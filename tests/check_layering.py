#!/usr/bin/env python3
"""Fails when protocol/ or store/ include an I/O library, or config/ includes
yaml-cpp outside yaml_loader.cpp (STYLE.md, Layering)."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
include = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
forbidden_io = re.compile(r'^(uv\.h|uv/|openssl/|yaml-cpp/|spdlog/)')
bad = []
for folder in ("protocol", "store", "config"):
    for path in sorted((root / folder).rglob("*")):
        if path.suffix not in (".h", ".hpp", ".cpp", ".cc"):
            continue
        for header in include.findall(path.read_text(errors="replace")):
            if folder == "config":
                if header.startswith("yaml-cpp/") and path.name != "yaml_loader.cpp":
                    bad.append(f"{path.relative_to(root)}: includes <{header}> (only yaml_loader.cpp may)")
                if re.match(r'^(uv\.h|openssl/|spdlog/)', header):
                    bad.append(f"{path.relative_to(root)}: includes <{header}>")
            elif forbidden_io.match(header):
                bad.append(f"{path.relative_to(root)}: includes <{header}>")
for line in bad:
    print("layering violation:", line)
print(f"checked protocol/, store/, config/: {len(bad)} violation(s)")
sys.exit(1 if bad else 0)
