from bench.evaluate.cli import main

main()
