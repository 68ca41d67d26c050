"""A run from start to finish: read and map (pipeline), admit, send, and finish (results, journal, summary).

The runner is the one owner of a run's state files; the pieces below it produce data, not files.
"""
