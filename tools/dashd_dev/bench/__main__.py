"""`python -m dashd_dev.bench`: the same commands as `dashd bench`."""

import sys

from dashd_dev.bench.cli import main

sys.exit(main())
