import sys

from edgeinfer_train.cli import main

sys.exit(main())
