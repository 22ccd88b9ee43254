"""The engine: pure due/release decisions, run planning, the scheduler and the component runner.

May import ``kit``, ``store``, ``config`` and the leaves; never ``observe``, ``service`` or ``cli``.
"""
