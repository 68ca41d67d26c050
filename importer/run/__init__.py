"""A run from start to finish: one library function per command (commands), the pipeline, admission
(data only, in the reading thread), the send loop, and the owner that alone writes the results file,
the journal and the summary (owner, finish). Every stop path is bounded (sendloop).
"""
