"""The shipped configuration files and their JSON Schema (installed as ``interlock_config``)."""
