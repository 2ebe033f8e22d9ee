"""Runtime: gRPC servicers, usage stores, reload and the alert sweeper."""
