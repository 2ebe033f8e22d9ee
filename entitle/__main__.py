import sys

from entitle.cli import main

sys.exit(main())
