"""The one data-flow engine of ``distmap run`` and ``distmap execute``.

* :mod:`~distmap.dataflow.jsonpath`: JSONPath queries (Jayway's dialect, as AWS uses it),
  ResultPath / OutputPath / InputPath application;
* :mod:`~distmap.dataflow.intrinsics`: the ``States.*`` intrinsic functions;
* :mod:`~distmap.dataflow.templates`: payload templates (``.$`` fields) for Parameters,
  ItemSelector, ResultSelector, BatchInput ...

Everything compiles once and evaluates per call. It depends only on :mod:`distmap.errors`.
"""
