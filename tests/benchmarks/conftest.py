"""benchmarks/ is a folder of scripts beside the package, not a package: its tests import the
scripts' modules by name, as the scripts import each other."""

import sys

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
