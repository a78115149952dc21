import sys

from adtr.cli import main

sys.exit(main())
