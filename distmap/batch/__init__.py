"""The parts of the batch executor (``distmap.processor``), one concept a module:

* ``executions``: child executions and their tagged outcomes;
* ``selection``: raw chunk bytes -> items -> ItemSelector -> ItemBatcher batches;
* ``attempts``: what a failed attempt leads to (Retry / Catch / TimeoutSeconds);
* ``encoding``: finished executions -> result records;
* ``clock``: one timer thread and its deadline heap (retry wake-ups, attempt deadlines);
* ``inline_lane``, ``thread_lanes``, ``async_lanes``: where attempts run.
"""
