"""`python -m birdinfer ...` is the `birdinfer` command."""

import sys

from birdinfer.cli import main

sys.exit(main())
