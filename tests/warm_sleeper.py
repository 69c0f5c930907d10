"""A job for tests/test_warm.py: sleeps, then writes a file (so a killed job must leave none)."""

import sys
import time
from pathlib import Path


def main(argv):
    out, seconds = Path(argv[0]), float(argv[1])
    print(f"sleeper pid-independent start -> {out}", flush=True)
    time.sleep(seconds)
    out.write_text("finished")
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
