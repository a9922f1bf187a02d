from signoff.cli import main

raise SystemExit(main())
