"""The results history, a room above bench and eval: every run remembered across devices and versions.

``records``: what a run leaves in the store (``Run``, ``Measure``), from a bench or eval result; ``store``: the
SQLite or PostgreSQL store and its migrations; ``trend``: steps over a series of runs and the gate;
``transfer``: JSON lines out and in; ``recorder``: what ``--record`` does after a run.
"""
