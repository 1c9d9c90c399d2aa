"""The r_t study runner: python scripts/study.py --template T.json --pairs P.csv --seeds 1-10 --grid delay=0,0.1
--server URL [--server URL] (options: experiments/__main__.py, or --help).

It loads the pack as one package, the way ComfyUI does (scripts/harness.py), and needs no ComfyUI in this process:
the servers do the work.
"""

import sys

import harness

if __name__ == "__main__":
    sys.exit(harness.module("experiments.__main__").main())
