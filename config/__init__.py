"""The configuration: the shipped files (``orchestration.json``, ``demo.json``, the JSON Schema)
and the code that loads, checks and resolves them. May import only the shared leaves.

``model`` is the validated configuration, ``schema`` the schema's problems as messages,
``loader`` reads and resolves a file; ``registry`` finds component classes by name.
"""
