from bench.lessons.cli import main

main()
