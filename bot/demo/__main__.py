"""``python -m bot.demo``: see :mod:`bot.demo.run`."""

import sys

from bot.demo.run import main

sys.exit(main())
