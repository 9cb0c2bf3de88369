"""`python -m devstack.modelserver --port=8500 --rest_api_port=8501 --model_name=digits --model_base_path=/models/digits`."""

from __future__ import annotations

import sys

from devstack.modelserver.server import main

if __name__ == "__main__":
    sys.exit(main())
