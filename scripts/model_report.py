#!/usr/bin/env python3
"""Model report (same as ``ganpu report``): EORS recall / false zeros per layer, GAN
quality with EORS on vs off vs noise vs real, oracle work of one training step.

Usage: python scripts/model_report.py [--out out] [--json F] [--md docs/model-report.md]
       [--mlp-steps 500] [--conv-steps 150]
"""

import argparse
import sys

from ganpu.gan.commands import cmd_report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out")
    ap.add_argument("--json", default=None)
    ap.add_argument("--md", default=None)
    ap.add_argument("--mlp-steps", type=int, default=500)
    ap.add_argument("--conv-steps", type=int, default=150)
    return cmd_report(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
