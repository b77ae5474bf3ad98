from infranet.cli import main

raise SystemExit(main())
