"""Walking a CPython interpreter's threads and frames (``walker``), with the
code objects they run cached by address (``codecache``) and their line tables
decoded once (``linetable``)."""
