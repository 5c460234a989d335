from stbench.cli import main

raise SystemExit(main())
