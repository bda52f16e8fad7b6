import sys

from specrs.cli import main

sys.exit(main())
