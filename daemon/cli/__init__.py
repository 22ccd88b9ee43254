"""``interlock ...``: argument parsing, one module per command group, tables, the admin client
and the demo. The top room: it may import everything; nothing imports it.
"""
