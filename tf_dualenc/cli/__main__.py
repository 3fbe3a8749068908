"""`python -m tf_dualenc.cli`, as the `tf-dualenc` script."""

import sys

from tf_dualenc.cli import main

sys.exit(main())
