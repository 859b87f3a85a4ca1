import sys

from data_preprocess.captions.cli import main

sys.exit(main())
