"""Amazon States Language: run whole Step Functions state machines (``distmap execute``).

* ``machine`` parses and validates a definition and runs its states (the interpreter);
* ``jsonpath``, ``intrinsics``, ``templates`` and ``choice`` implement the JSONPath data flow,
  intrinsic functions, payload templates and Choice rules;
* ``distributed`` runs a DISTRIBUTED Map's child workflows on the engine of ``distmap run``;
* ``resources`` reads the resources file; ``integrations`` dispatches a Task's Resource to
  ``lambdas`` (lambda:invoke), ``aws`` (aws-sdk and optimized integrations, Python or boto3),
  ``children`` (states:startExecution) and ``callbacks`` (task tokens and activities);
* ``execution`` is the public ``execute()`` returning the StartSyncExecution-shaped response.
"""
