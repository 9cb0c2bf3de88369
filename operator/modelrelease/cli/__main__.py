"""``python -m modelrelease.cli``: what the container image and the tests run."""

import sys

from modelrelease.cli import main

sys.exit(main())
