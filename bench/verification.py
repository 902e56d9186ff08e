"""What verifying one host costs the controller, against the bare minimum of work.

Seed 004: "complete verification and state comparison in under 5 seconds per
server". One host's before and after captures, each about SIZE in total (default
1 MB: a ``dpkg -l``-like listing and a JSON document of the same size), framed as
the capture script prints them, then:

- ``parse``: :func:`parse_capture` of both stdouts;
- ``evaluate``: :func:`evaluate` of a verification with seed 004's regex +
  version_increase check, a json_path + version_increase check, a threshold, an
  unchanged check and an unchecked key (drift);
- ``evidence``: ``HostEvidence.to_dict`` + ``json.dumps`` (what the store writes);
- ``baseline``: on the same texts, the least any implementation must do: one bare
  ``re.search`` per listing and one ``json.loads`` per document, before and after.

Prints the median of REPEAT runs of each, and the ratio of (parse + evaluate) to
the baseline. No thresholds: read the numbers.

    uv run python bench/verification.py
    uv run python bench/verification.py --size 5MB --repeat 7 --json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from muster.domain.verification import (
    Captured,
    evaluate,
    parse_capture,
    parse_verification,
)

MARKER = "BenchMarker0123456789abcdef"
PATTERN = r"ii\s+openssl\s+(\S+)"

VERIFICATION = parse_verification(
    "bench",
    {
        "before_tasks": ["backup"],
        "after_tasks": ["upgrade_packages"],
        "commands": {
            "package_versions": "dpkg -l",
            "inventory": "cat /etc/inventory.json",
            "disk": "df --output=pcent / | tail -1",
            "kernel": "uname -r",
            "sysctl": "sysctl -a",
        },
        "comparisons": {
            "package_versions": {
                "type": "regex_match",
                "pattern": PATTERN,
                "expected_change": "version_increase",
            },
            "inventory": {
                "type": "json_path",
                "path": "$.packages.openssl.version",
                "expected_change": "version_increase",
                "scheme": "semver",
            },
            "disk": {"type": "threshold", "maximum": 90},
            "kernel": {"type": "unchanged"},
        },
    },
)


def _parse_size(text: str) -> int:
    units = {"KB": 1000, "MB": 1000**2, "KIB": 1024, "MIB": 1024**2, "B": 1}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * factor)
    return int(upper)


def _listing(size: int, openssl: str) -> str:
    # The openssl line last: the regex has to walk the whole listing, the worst case.
    line = "ii  libexample{:06d}  1.2.3-4ubuntu0.{:d}  amd64  An example library package\n"
    lines = [line.format(i, i % 50) for i in range(size // len(line.format(0, 0)))]
    lines.append(f"ii  openssl  {openssl}  amd64  Secure Sockets Layer toolkit\n")
    return "".join(lines)


def _document(size: int, openssl: str) -> str:
    entry = {"version": "1.2.3", "arch": "amd64", "status": "installed"}
    count = size // len(json.dumps(entry)) + 1
    packages: dict[str, Any] = {f"lib{i:06d}": entry for i in range(count)}
    packages["openssl"] = {"version": openssl, "arch": "amd64"}
    return json.dumps({"host": "web01", "packages": packages})


def _stdout(texts: dict[str, str]) -> str:
    return "".join(
        f"\n{MARKER}:begin:{key}\n{text}\n{MARKER}:end:{key}:0\n" for key, text in texts.items()
    )


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1MB", help="size of each listing and document")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = _parse_size(args.size)

    before_texts = {
        "package_versions": _listing(size, "3.0.2-0ubuntu1.10"),
        "inventory": _document(size, "3.0.2"),
        "disk": " 41%",
        "kernel": "6.1.0-18-amd64",
        "sysctl": "vm.swappiness = 60\n" * 2000,
    }
    after_texts = {
        **before_texts,
        "package_versions": _listing(size, "3.0.2-0ubuntu1.12"),
        "inventory": _document(size, "3.1.0"),
        "disk": " 43%",
        "sysctl": "vm.swappiness = 10\n" * 2000,
    }
    before_out, after_out = _stdout(before_texts), _stdout(after_texts)
    before = parse_capture(before_out, MARKER)
    after = parse_capture(after_out, MARKER)
    evidence = evaluate(VERIFICATION, "web01", before, after)
    assert evidence.passed and evidence.drift == ("sysctl",), evidence.to_dict()["checks"]

    compiled = re.compile(PATTERN, re.MULTILINE)

    def baseline() -> None:
        for texts in (before_texts, after_texts):
            assert compiled.search(texts["package_versions"])
            json.loads(texts["inventory"])

    def parse_both() -> tuple[dict[str, Captured], dict[str, Captured]]:
        return parse_capture(before_out, MARKER), parse_capture(after_out, MARKER)

    timings = {
        "baseline": _median(baseline, args.repeat),
        "parse": _median(parse_both, args.repeat),
        "evaluate": _median(lambda: evaluate(VERIFICATION, "web01", before, after), args.repeat),
        "evidence": _median(lambda: json.dumps(evidence.to_dict()), args.repeat),
    }
    host = timings["parse"] + timings["evaluate"]
    result = {
        "capture_bytes_per_side": len(before_out),
        "seconds": timings,
        "host_seconds": host,
        "ratio_to_baseline": host / timings["baseline"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"capture per side: {len(before_out) / 1e6:.2f} MB, median of {args.repeat} runs")
    for name, seconds in timings.items():
        print(f"  {name:<9} {seconds * 1000:9.2f} ms")
    print(f"  one host (parse + evaluate): {host * 1000:.2f} ms")
    print(f"  ratio to baseline: {result['ratio_to_baseline']:.2f}x")


if __name__ == "__main__":
    main()
