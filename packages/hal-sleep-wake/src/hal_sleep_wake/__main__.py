"""``python -m hal_sleep_wake``: see :mod:`hal_sleep_wake.cli`."""

import sys

from hal_sleep_wake.cli import main

sys.exit(main())
