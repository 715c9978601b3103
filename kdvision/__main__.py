from kdvision.cli import main

raise SystemExit(main())
