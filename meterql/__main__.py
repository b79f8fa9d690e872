"""``python -m meterql``: the same command line as ``meterql``."""

from meterql.cli import main

if __name__ == "__main__":
    main()
