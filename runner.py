#!/usr/bin/env python
"""Command line of the KD reproducibility suite: `python runner.py --help`."""
import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
