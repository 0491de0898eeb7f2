from paperradar.cli import main

main()
