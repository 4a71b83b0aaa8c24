from etcdmgr.cli.main import main

raise SystemExit(main())
