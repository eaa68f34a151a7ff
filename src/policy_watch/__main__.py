from policy_watch.cli import main

if __name__ == "__main__":
    main()
