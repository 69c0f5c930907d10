import sys

from circadia.cli import main

sys.exit(main())
