from data_preprocess.captions.cli import main

main()
