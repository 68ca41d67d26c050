"""What a run remembers: the journal of sent events and its run history, the flock, the file manifest,
event identity (pinned by tests), and the results and summary files that monitoring reads.
A rerun reads this to send nothing twice; a lost journal is refused, never silently replaced.
"""
