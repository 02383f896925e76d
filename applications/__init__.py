"""What a researcher runs and looks at, built on the core (``submission``) and ``evaluation``: the run_local
command, the pictures and HTML pages, sample generation and the AIcrowd entry point."""
