"""``python -m benchmarks.harness --scale tiny|1gb|10gb|30gb``, from the repository root."""

import sys

from benchmarks.harness.run import main

sys.exit(main())
