import sys

from tools.config_reference import main

sys.exit(main())
