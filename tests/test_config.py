"""Job file validation: every problem is one ConfigError naming the field and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import distmap
from distmap.config import load_job, parse_job
from distmap.errors import ConfigError

BASE = {
    "ItemReader": {"Source": "in.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
    "ItemProcessor": {"Function": "itemfns:echo"},
}


def with_(path: str, value, base=None):
    data = json.loads(json.dumps(base or BASE))
    cur = data
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return data


def err(data) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_job(data, base_dir="/tmp")
    return info.value


def test_minimal_job_gets_aws_defaults():
    """A minimal job validates and gets AWS defaults (no tolerance, engine-default concurrency, no batching)."""
    job = parse_job(BASE, base_dir="/data")
    assert job.item_reader.source == "/data/in.jsonl"
    assert job.item_reader.max_items == 0
    assert job.tolerated_failure_count is None and job.tolerated_failure_percentage is None
    assert job.max_concurrency == 0
    assert job.item_batcher is None and job.result_writer is None


def test_retrier_defaults_match_asl():
    """A Retrier without options gets IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0, no jitter."""
    job = parse_job(with_("ItemProcessor.Retry", [{"ErrorEquals": ["States.ALL"]}]))
    r = job.processor.retry[0]
    assert (r.interval_seconds, r.max_attempts, r.backoff_rate, r.max_delay_seconds, r.jitter_strategy) == (
        1.0,
        3,
        2.0,
        None,
        "NONE",
    )


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ("ToleratedFailureCout", 3, "ToleratedFailureCout", "did you mean 'ToleratedFailureCount'"),
        (
            "ItemReader.ReaderConfig.InputType",
            "XML",
            "ItemReader.ReaderConfig.InputType",
            "must be one of CSV, JSON, JSONL",
        ),
        ("ToleratedFailurePercentage", 101, "ToleratedFailurePercentage", "must be <= 100"),
        ("ToleratedFailureCount", -1, "ToleratedFailureCount", "must be >= 0"),
        ("ToleratedFailureCount", 1.5, "ToleratedFailureCount", "must be an integer"),
        ("MaxConcurrency", "lots", "MaxConcurrency", "must be an integer"),
        ("ItemProcessor.Function", "no_colon", "ItemProcessor.Function", "module:function"),
        ("ItemProcessor.TimeoutSeconds", 0, "ItemProcessor.TimeoutSeconds", "must be > 0"),
        (
            "ItemProcessor.Retry",
            [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}],
            "ItemProcessor.Retry[0].ErrorEquals",
            "last retrier",
        ),
        (
            "ItemProcessor.Retry",
            [{"ErrorEquals": ["States.ALL", "X"]}],
            "ItemProcessor.Retry[0].ErrorEquals",
            "alone",
        ),
        ("ItemProcessor.Retry", [{"ErrorEquals": []}], "ItemProcessor.Retry[0].ErrorEquals", "non-empty"),
        (
            "ItemProcessor.Retry",
            [{"ErrorEquals": ["X"], "BackoffRate": 0.5}],
            "ItemProcessor.Retry[0].BackoffRate",
            ">= 1.0",
        ),
        (
            "ItemProcessor.Retry",
            [{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}],
            "ItemProcessor.Retry[0].JitterStrategy",
            "FULL, NONE",
        ),
        (
            "ItemProcessor.Catch",
            [{"ErrorEquals": ["X"], "ResultPath": "$$.Map"}],
            "ItemProcessor.Catch[0].ResultPath",
            "cannot point into the context object",
        ),
        (
            "ItemReader.ReaderConfig.CSVHeaders",
            ["a"],
            "ItemReader.ReaderConfig.CSVHeaders",
            "only applies to InputType CSV",
        ),
        ("ItemReader.ReaderConfig.MaxItems", -5, "ItemReader.ReaderConfig.MaxItems", ">= 0"),
        ("ItemBatcher", {"BatchInput": {}}, "ItemBatcher", "MaxItemsPerBatch"),
        ("ItemBatcher", {"MaxInputBytesPerBatch": 300000}, "ItemBatcher.MaxInputBytesPerBatch", "<= 262144"),
        ("ItemSelector", {"x.$": "$..["}, "ItemSelector", "invalid JSONPath"),
        ("ItemSelector", {"x.$": "States.Nope($.a)"}, "ItemSelector", "unknown intrinsic function"),
        ("ResultWriter", {"Destination": "s3://bucket/../escape"}, "ResultWriter.Destination", "'..'"),
        (
            "ResultWriter",
            {"Destination": "ftp://host/x"},
            "ResultWriter.Destination",
            "local directory or s3://",
        ),
        (
            "ResultWriter",
            {"WriterConfig": {"OutputType": "XML"}, "Destination": "out"},
            "ResultWriter.WriterConfig.OutputType",
            "JSON, JSONL",
        ),
        ("Label", "../x", "Label", "without /"),
        ("ItemReader.Resource", "arn:aws:states:::s3:headObject", "ItemReader.Resource", "s3:listObjectsV2"),
    ],
)
def test_invalid_field_is_named_with_reason(path, value, field, reason):
    """An invalid or unknown field fails validation with its dotted path and a reason."""
    e = err(with_(path, value))
    assert e.field == field
    assert reason in e.reason


def test_csv_given_headers_required_duplicates_left_to_run_time():
    """CSVHeaderLocation GIVEN needs CSVHeaders; duplicate given headers pass validation (AWS fails
    them when the run reads, with States.ItemReaderFailed: see test_exact_readers)."""
    base = with_("ItemReader.ReaderConfig", {"InputType": "CSV", "CSVHeaderLocation": "GIVEN"})
    assert err(base).field == "ItemReader.ReaderConfig.CSVHeaders"
    dup = with_(
        "ItemReader.ReaderConfig",
        {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "a"]},
    )
    assert parse_job(dup, base_dir="/tmp").item_reader.csv_headers == ("a", "a")


def test_asl_parameters_forms_map_to_uris():
    """ASL's s3:getObject / s3:putObject Parameters become s3:// URIs."""
    data = {
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "Parameters": {"Bucket": "src-bucket", "Key": "k/in.csv"},
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
        },
        "ItemProcessor": {"Function": "itemfns:echo"},
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "dst-bucket", "Prefix": "p/q"},
        },
    }
    job = parse_job(data)
    assert job.item_reader.source == "s3://src-bucket/k/in.csv"
    assert job.result_writer.destination == "s3://dst-bucket/p/q"


def test_yaml_syntax_error_names_line(tmp_path: Path):
    """A YAML syntax error reports the file, line and column."""
    p = tmp_path / "bad.yaml"
    p.write_text("ItemReader:\n  Source: x\n   bad: [\n")
    with pytest.raises(ConfigError) as info:
        load_job(p)
    assert "line 3" in str(info.value) and str(p) in str(info.value)


def test_missing_job_file_is_a_config_error(tmp_path: Path):
    """A job file that does not exist is reported as such."""
    with pytest.raises(ConfigError, match="job file not found"):
        load_job(tmp_path / "nope.yaml")


def test_overrides_apply_before_validation(tmp_path: Path):
    """--set style overrides change nested fields (values parsed as YAML) before validation."""
    p = tmp_path / "job.yaml"
    p.write_text(
        "ItemReader:\n  Source: in.jsonl\n  ReaderConfig: {InputType: JSONL}\nItemProcessor:\n  Function: itemfns:echo\n"
    )
    job = load_job(
        p, ["MaxConcurrency=8", "ItemReader.ReaderConfig.MaxItems=5", "ToleratedFailurePercentage=2.5"]
    )
    assert (
        job.max_concurrency == 8
        and job.item_reader.max_items == 5
        and job.tolerated_failure_percentage == 2.5
    )
    assert job.item_reader.source == str(tmp_path / "in.jsonl")  # relative to the job file
    with pytest.raises(ConfigError) as info:
        load_job(p, ["MaxConcurrency=-1"])
    assert info.value.field == "MaxConcurrency"


def test_unimportable_function_fails_before_any_work(tmp_path: Path, write_jsonl):
    """A Function that cannot be imported is a ConfigError, raised before any result is written."""
    src = write_jsonl([{"id": 1}])
    out = tmp_path / "out"
    data = {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "no_such_module_xyz:fn"},
        "ResultWriter": {"Destination": str(out)},
    }
    with pytest.raises(ConfigError) as info:
        distmap.run(data, handle_signals=False)
    assert info.value.field == "ItemProcessor.Function"
    assert "no_such_module_xyz" in info.value.reason
    assert not out.exists()


def test_json_job_file_is_accepted(tmp_path: Path):
    """Job files may be JSON as well as YAML."""
    p = tmp_path / "job.json"
    p.write_text(json.dumps(BASE))
    assert load_job(p).processor.function == "itemfns:echo"
