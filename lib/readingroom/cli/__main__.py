"""`python -m readingroom.cli`: the same as the `readingroom` command."""
from readingroom.cli import main

main()
