"""`python -m data_preprocess.build`: see data_preprocess.build.cli."""

import sys

from data_preprocess.build.cli import main

sys.exit(main())
