import sys

from hive_server.cli import main

sys.exit(main())
