import sys

from data_preprocess.caption_writer.cli import main

sys.exit(main())
