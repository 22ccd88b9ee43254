"""interlock: the orchestrator daemon that keeps Victoria's public-transport open data fresh."""
