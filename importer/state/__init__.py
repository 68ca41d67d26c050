"""What a run remembers: the journal of sent events, the lock, the file manifest, results and summary files.

A rerun reads this to send nothing twice; monitoring reads the results and summary files.
"""
