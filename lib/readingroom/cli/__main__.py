"""`python -m readingroom.cli`: the same as the `readingroom` command."""
from readingroom.cli.main import main

main()
