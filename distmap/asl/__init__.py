"""Amazon States Language: run whole Step Functions state machines (``distmap execute``).

* ``machine`` parses and validates a definition and runs its states (the interpreter);
* ``choice`` compiles Choice rules, ``path_values`` checks what ``*Path`` fields select, and
  ``execution_types`` holds the limits of Express and Standard children (the JSONPath data flow,
  intrinsic functions and payload templates are :mod:`distmap.dataflow`, shared with
  ``distmap run``);
* ``distributed`` runs a DISTRIBUTED Map's child workflows on the engine of ``distmap run``;
* ``resources`` reads the resources file; ``integrations`` dispatches a Task's Resource to
  ``lambdas`` (lambda:invoke), ``aws`` (aws-sdk and optimized integrations, Python or boto3),
  ``children`` (states:startExecution) and ``callbacks`` (task tokens and activities);
* ``execution`` is the public ``execute()`` returning the StartSyncExecution-shaped response.

The modules read top-down (``tests/test_layers.py``): execution > machine > distributed >
integrations > children > lambdas, callbacks > resources > the rest. What a lower module needs
from above is passed in: ``Run.run_child`` (child executions), ``ChildMachine``'s machine and
``Run`` classes, ``Resources.parsed_machine``'s parser.
"""
