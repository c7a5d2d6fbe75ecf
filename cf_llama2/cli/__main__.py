"""``python -m cf_llama2.cli``: the ``cf-llama2`` command."""

import sys

from . import main

sys.exit(main())
