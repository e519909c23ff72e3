from lightning_green.cli import main

raise SystemExit(main())
