"""`make demo`: a thin wrapper around `audit-trail demo` (kept so `python demo/demo.py` still works).

The demo itself lives in the package (audit_trail.local.demo), so an installed CLI can run it:
it starts `audit-trail local` and drives it over HTTP and the CLI only. See `audit-trail demo --help`.
"""

from __future__ import annotations

import sys

from audit_trail.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["demo", *sys.argv[1:]]))
