from atmpvault.cli import main

main()
