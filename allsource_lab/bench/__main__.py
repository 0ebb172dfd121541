"""``python -m allsource_lab.bench`` (``make bench``)."""

import sys

from allsource_lab.bench.run import main

sys.exit(main())
