"""The command line. It parses arguments and calls the library; nothing imports it."""
