"""`python -m data_preprocess.builder`: see data_preprocess.builder.cli."""

import sys

from data_preprocess.builder.cli import main

sys.exit(main())
