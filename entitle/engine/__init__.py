"""Pure domain: load, validate, compile, time math and decisions; no I/O beyond reading policy files."""
