from policy_watch.cli import main

main()
