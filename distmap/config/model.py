"""Frozen, validated value objects describing one Distributed Map job.

Field names mirror the ASL Distributed Map state; see ``distmap.config.parse`` for the mapping
from the YAML/JSON job file and README "Config reference" for every field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

InputType = Literal["CSV", "JSON", "JSONL", "PARQUET", "MANIFEST"]
ReaderResource = Literal["getObject", "listObjectsV2"]
OutputType = Literal["JSON", "JSONL"]
Transformation = Literal["NONE", "COMPACT", "FLATTEN"]


@dataclass(frozen=True, slots=True)
class ItemReaderConfig:
    """Where items come from and how to split them."""

    source: str
    """A local file, directory or glob, ``s3://bucket/key``, ``s3://bucket/prefix/``, an ``s3://``
    glob, or a ``gs://`` / ``az://`` / ``https://`` URI (relative paths are resolved against the job
    file). For ``listObjectsV2``: ``s3://bucket/prefix`` or a local directory."""
    input_type: InputType
    csv_header_location: Literal["FIRST_ROW", "GIVEN"] = "FIRST_ROW"
    csv_headers: tuple[str, ...] = ()
    csv_delimiter: str = ","
    max_items: int = 0
    """0 means no limit."""
    resource: ReaderResource = "getObject"
    """``getObject``: the items inside ``source`` (one object, or every file of a directory /
    glob). ``listObjectsV2``: one item per object listed under ``source`` (a prefix or a
    directory), or with ``transformation`` LOAD_AND_FLATTEN the items inside each of them."""
    version_id: str | None = None
    """``s3:getObject``'s VersionId."""
    transformation: Literal["NONE", "LOAD_AND_FLATTEN"] = "NONE"
    manifest_type: Literal["S3_INVENTORY", "ATHENA_DATA"] | None = None
    expand: bool = True
    """A ``Source`` naming a directory, a prefix ending in ``/`` or a glob is read as several files;
    ``Parameters: {Bucket, Key}`` names one object, literally, as on AWS."""
    list_params: tuple[tuple[str, str], ...] = ()
    """Further ListObjectsV2 parameters (StartAfter, Delimiter, RequestPayer, ExpectedBucketOwner)."""


@dataclass(frozen=True, slots=True)
class ItemBatcherConfig:
    """ASL ItemBatcher: groups items into one child input ``{"Items": [...], "BatchInput": ...}``."""

    max_items_per_batch: int = 0
    max_input_bytes_per_batch: int = 0
    batch_input: Any = None


@dataclass(frozen=True, slots=True)
class RetrierConfig:
    """One ASL Retrier. ``max_attempts`` counts retries: 0 means never retry."""

    error_equals: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter_strategy: Literal["FULL", "NONE"] = "NONE"

    def delay(self, retry_number: int) -> float:
        """Un-jittered delay before retry number ``retry_number`` (1-based)."""
        d = self.interval_seconds * (self.backoff_rate ** (retry_number - 1))
        if self.max_delay_seconds is not None:
            d = min(d, self.max_delay_seconds)
        return d


@dataclass(frozen=True, slots=True)
class CatcherConfig:
    """One ASL Catcher: a caught item SUCCEEDS with the error object placed at ``result_path``."""

    error_equals: tuple[str, ...]
    result_path: str | None = "$"
    next: str | None = None
    """The state to go to (ASL state machines; unused by Map jobs)."""


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    """The item processor: a Python callable with ASL Retry / Catch / TimeoutSeconds."""

    function: str | Callable[[Any], Any]
    """``module:function`` (importable from the working directory) or, from the Python API, a callable."""
    timeout_seconds: float | None = None
    retry: tuple[RetrierConfig, ...] = ()
    catch: tuple[CatcherConfig, ...] = ()
    execution_type: str = "STANDARD"
    """``ProcessorConfig.ExecutionType`` of a state machine's DISTRIBUTED Map (STANDARD or
    EXPRESS): the form of the children's ARNs (``records.child_identity``)."""


@dataclass(frozen=True, slots=True)
class ResultWriterConfig:
    """Where the manifest and result files go, and their shape (ASL WriterConfig)."""

    destination: str
    """Local directory or ``s3://bucket/prefix``."""
    output_type: OutputType = "JSON"
    transformation: Transformation = "NONE"
    max_file_bytes: int = 5 * 1024**3
    """A result file is closed and the next one started once it reaches this size (AWS: 5 GB)."""


@dataclass(frozen=True, slots=True)
class MapJob:
    """A whole Distributed Map job. Build it with ``MapJob.from_dict`` / ``distmap.load_job``."""

    item_reader: ItemReaderConfig
    processor: ProcessorConfig
    item_selector: Mapping[str, Any] | None = None
    item_batcher: ItemBatcherConfig | None = None
    max_concurrency: int = 0
    """Items in flight across all workers; 0 = engine default (one per CPU core)."""
    tolerated_failure_percentage: float | None = None
    tolerated_failure_count: int | None = None
    result_writer: ResultWriterConfig | None = None
    state_machine_name: str = "distmap"
    label: str | None = None
    input: Any = field(default_factory=dict)
    """The Map state's input (``$`` in ItemSelector paths, ``$states.input`` in JSONata)."""
    source_file: str | None = None
    query_language: Literal["JSONPath", "JSONata"] = "JSONPath"
    """The language of ItemSelector and BatchInput (``QueryLanguage``)."""
    variables: Mapping[str, Any] = field(default_factory=dict)
    """The workflow variables the ItemSelector reads (a DISTRIBUTED Map in ``distmap execute``
    sets them; a job file has none)."""

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, base_dir: str | None = None, source: str | None = None
    ) -> MapJob:
        """Validate an ASL-shaped mapping (the parsed job file) into a MapJob."""
        from distmap.config.parse import parse_job

        return parse_job(data, base_dir=base_dir, source=source)

    @property
    def map_name(self) -> str:
        """The Map state's name used in ARNs: ``Label`` if given, else ``Map``."""
        return self.label or "Map"
