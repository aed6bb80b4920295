"""`python -m fs_spark.cli`: the same as the `fs-spark` command."""

import sys

from fs_spark.cli.app import main

sys.exit(main())
