from hiast.cli import main

raise SystemExit(main())
