"""Amazon States Language: run whole Step Functions state machines (``distmap execute``).

``definition`` parses and validates a state machine, ``interpreter`` runs it, ``jsonpath`` /
``intrinsics`` / ``templates`` / ``choice`` implement the data-flow and Choice rules, and
``distributed`` runs a DISTRIBUTED Map state's children through the same engine as ``distmap run``.
"""
