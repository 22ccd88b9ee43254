"""The configuration: the shipped files (``orchestration.json``, ``demo.json``, the JSON Schema)
and the code that loads, checks and resolves them. May import only the shared leaves.
"""
