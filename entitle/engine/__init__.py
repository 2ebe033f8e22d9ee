"""Pure domain: load, validate, compile, time math, decisions; no gRPC, SQL or clock."""
