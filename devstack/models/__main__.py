"""`python -m devstack.models [--force]` ensures the cached models; `build --output DIR` trains into DIR."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.models", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    build = sub.add_parser("build", help="train and export every version into --output (no caching)")
    build.add_argument("--output", type=Path, required=True)
    parser.add_argument("--force", action="store_true", help="retrain even when the cache matches the recipe")
    args = parser.parse_args(argv)

    if args.command == "build":
        from devstack.models import train

        accuracies = train.build_all(args.output)
        print(json.dumps({"accuracies": accuracies}))
        return 0

    from devstack import models

    root = models.ensure_models(force=args.force)
    for version in sorted(models.recipe.VERSIONS):
        metrics = models.read_metrics(version, root)
        print(f"{models.MODEL_NAME} v{version}: accuracy {metrics['accuracy']}  ({models.version_dir(version, root)})")
    print(f"golden set: {root / models.GOLDEN_MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
