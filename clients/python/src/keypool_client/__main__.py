"""`python -m keypool_client --list | --find [--max-uses N]`."""

import sys

from .cli import main

sys.exit(main())
