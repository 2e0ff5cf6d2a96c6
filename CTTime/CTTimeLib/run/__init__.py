"""Runs: studies and manifests, execution (inline, local processes, Dask), the result cache, the run-folder
rules, progress, the run summary, and the pipeline that ties them together."""
