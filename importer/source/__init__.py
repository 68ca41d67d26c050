"""Where rows come from: CSV, TSV, Parquet and JSON Lines (+gz) files, globs, folders and object storage.

Everything leaves this package as Arrow record batches that carry each row's file and row number.
"""
