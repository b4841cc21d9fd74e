"""`tfrec validate`: the reader and validation of `tfrec train --data`, from the command line."""

import gzip

import pandas as pd
import pytest
import yaml

from tfrec.cli import main
from tfrec.data.readers import DataFileError, read_tables, reject_rows
from tfrec.schema import FeatureSchema


def _schema(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump({"item_id": "sku", "item_price": "price", "click_label": "clicked"}))
    return str(path)


def test_validate_a_folder_of_csv_and_parquet_and_write_rejected_rows(tmp_path, capsys):
    folder = tmp_path / "logs"
    folder.mkdir()
    pd.DataFrame({"sku": ["a", "b", ""], "price": [1.0, -2.0, 3.0], "clicked": [0, 1, 1]}).to_csv(
        folder / "day1.csv", index=False
    )
    pd.DataFrame({"sku": ["c"], "price": [4.0], "clicked": [2]}).to_parquet(folder / "day2.parquet")
    rejected = tmp_path / "rejected.parquet"
    assert main(["validate", "--data", str(folder), "--schema", _schema(tmp_path), "--rejected", str(rejected)]) == 0
    out = capsys.readouterr().out
    assert "4" in out and "rejected" in out
    bad = pd.read_parquet(rejected)
    assert len(bad) == 3  # negative price, empty id, click label 2; the one good row is used
    assert set(bad["_source"].map(lambda p: p.rsplit("/", 1)[-1])) == {"day1.csv", "day2.parquet"}


def test_validate_names_the_file_on_a_wrong_encoding_and_a_missing_column(tmp_path, capsys):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sku,price,clicked\ncaf\xe9,1.0,0\n".encode("latin-1"))
    assert main(["validate", "--data", str(latin), "--schema", _schema(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "latin.csv" in err and "encoding" in err
    assert main(["validate", "--data", str(latin), "--schema", _schema(tmp_path), "--encoding", "latin-1"]) == 0
    no_price = tmp_path / "no_price.csv"
    pd.DataFrame({"sku": ["a"], "clicked": [1]}).to_csv(no_price, index=False)
    assert main(["validate", "--data", str(no_price), "--schema", _schema(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "price" in err and "no_price.csv" in err


def test_validate_warns_on_header_only_files_and_duplicate_rows(tmp_path, capsys):
    header = tmp_path / "header.csv"
    header.write_text("sku,price,clicked\n")
    assert main(["validate", "--data", str(header), "--schema", _schema(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "header.csv: no data rows (only a header)" in err and "no data rows in any file" in err
    dup = tmp_path / "dup.parquet"
    pd.DataFrame({"sku": ["a", "a", "b"], "price": [1.0, 1.0, 2.0], "clicked": [0, 0, 1]}).to_parquet(dup)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["validate", "--data", str(dup), str(header), "--schema", _schema(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "dup.parquet: 1 row(s) repeat an earlier row exactly: row 2 (row 2 repeats row 1)" in err
    assert "header.csv" in err
    assert main(["validate", "--data", str(empty), "--schema", _schema(tmp_path)]) == 2
    assert "empty.csv" in capsys.readouterr().err


# ------------------------------------------------ issue 20: files without rows, encodings, duplicates
def _good_csv(path, rows=(("a", 1.0, 0), ("b", 2.0, 1))):
    pd.DataFrame(list(rows), columns=["sku", "price", "clicked"]).to_csv(path, index=False)
    return str(path)


def test_an_empty_file_is_an_error_that_names_it(tmp_path, capsys):
    good = _good_csv(tmp_path / "good.csv")
    for name in ("empty.csv", "empty.parquet"):
        empty = tmp_path / name
        empty.write_bytes(b"")
        # Even next to a good file: a 0-byte file is a broken export, not an empty day.
        assert main(["validate", "--data", good, str(empty), "--schema", _schema(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"cannot read '{empty}': the file is empty (0 bytes" in err, err
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n")
    assert main(["validate", "--data", str(blank), "--schema", _schema(tmp_path)]) == 2
    assert f"cannot read '{blank}': no header row" in capsys.readouterr().err


def test_a_latin1_file_names_file_byte_line_column_and_the_encoding_to_give(tmp_path, capsys):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sku,price,clicked\nabc,1.0,0\ncaf\xe9 cr\xe8me,2.0,1\n".encode("latin-1"))
    assert main(["validate", "--data", str(latin), "--schema", _schema(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "latin.csv' as CSV with encoding 'utf-8'" in err, err
    assert "not utf-8 at byte 31 (line 3, column 'sku'" in err and "caf\\xe9" in err
    assert "give --encoding latin-1" in err
    assert main(["validate", "--data", str(latin), "--schema", _schema(tmp_path), "--encoding", "latin-1"]) == 0
    tables = read_tables(str(latin), FeatureSchema.from_yaml(_schema(tmp_path)), csv_encoding="latin-1")
    assert tables.frame["sku"].tolist() == ["abc", "café crème"]
    # Windows cp1252 bytes (curly quotes) get cp1252 suggested; a gzip file counts bytes of its text.
    quoted = tmp_path / "quoted.csv.gz"
    with gzip.open(quoted, "wb") as f:
        f.write("sku,price,clicked\n\u201cbest\u201d,1.0,0\n".encode("cp1252"))
    assert main(["validate", "--data", str(quoted), "--schema", _schema(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "quoted.csv.gz" in err and "at byte 18 of the decompressed text (line 2" in err
    assert "give --encoding cp1252" in err, err
    assert main(["validate", "--data", str(quoted), "--schema", _schema(tmp_path), "--encoding", "cp1252"]) == 0
    capsys.readouterr()
    assert main(["validate", "--data", str(latin), "--schema", _schema(tmp_path), "--encoding", "klingon"]) == 2
    assert "unknown encoding 'klingon'" in capsys.readouterr().err


def test_a_header_only_file_warns_by_name_and_is_counted(tmp_path, capsys):
    header = tmp_path / "header.csv"
    header.write_text("sku,price,clicked\n")
    good = _good_csv(tmp_path / "good.csv")
    assert main(["validate", "--data", good, str(header), "--schema", _schema(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert f"warning: {header}: no data rows (only a header)" in captured.err
    assert f"files read 2, 1 without data rows: {header}" in captured.out
    # Only header-only files: the table has no rows at all, an error (exit 1) after the accounting.
    assert main(["validate", "--data", str(header), "--schema", _schema(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "rows read 0" in captured.out and "no data rows in any file" in captured.err


def test_duplicated_rows_are_counted_warned_with_row_numbers_and_kept(tmp_path, capsys):
    dup = _good_csv(tmp_path / "dup.csv", [("a", 1.0, 0), ("a", 1.0, 0), ("b", 2.0, 1), ("a", 1.0, 0)])
    other = tmp_path / "other.parquet"
    pd.DataFrame({"sku": ["b", "c"], "price": [2.0, 3.0], "clicked": [1, 0]}).to_parquet(other)
    assert main(["validate", "--data", dup, str(other), "--schema", _schema(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "duplicated 3 of the used rows repeat an earlier row exactly (kept)" in captured.out
    assert f"{dup}: 2 row(s) repeat an earlier row exactly: rows 2, 4 (row 2 repeats row 1)" in captured.err
    assert f"{other}: 1 row(s) repeat an earlier row exactly: row 1 (row 1 repeats {dup} row 3)" in captured.err
    tables = read_tables([dup, str(other)], FeatureSchema.from_yaml(_schema(tmp_path)))
    assert tables.accounting.rows_used == 6 and tables.accounting.rows_duplicated == 3  # kept, not dropped
    assert tables.accounting.to_dict()["rows_duplicated"] == 3


def test_a_truncated_parquet_file_is_an_error_that_names_it(tmp_path, capsys):
    whole = tmp_path / "whole.parquet"
    pd.DataFrame({"sku": ["a", "b"], "price": [1.0, 2.0], "clicked": [0, 1]}).to_parquet(whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert main(["validate", "--data", str(whole), str(cut), "--schema", _schema(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read '{cut}' as parquet" in err and "Traceback" not in err
    assert "the file may be truncated (cut short or still being written) or not parquet" in err


def test_rejected_rows_name_their_file_row_and_column(tmp_path, capsys):
    data = _good_csv(tmp_path / "day.csv", [("a", 1.0, 0), ("b", -2.0, 1), ("c", 3.0, 1), ("d", -1.0, 0)])
    rejected = tmp_path / "rejected.parquet"
    assert main(["validate", "--data", data, "--schema", _schema(tmp_path), "--rejected", str(rejected)]) == 0
    assert f"price: negative value: {data} rows 2, 4" in capsys.readouterr().out
    assert pd.read_parquet(rejected)["_row"].tolist() == [2, 4]
    # Every row rejected: nothing to train on, exit 1.
    bad = _good_csv(tmp_path / "bad.csv", [("a", -1.0, 0)])
    assert main(["validate", "--data", bad, "--schema", _schema(tmp_path)]) == 1
    assert "no usable rows" in capsys.readouterr().err


def test_train_reads_files_through_the_same_reader_and_errors(tmp_path, capsys):
    # `tfrec train --data` stops before any model is built, with the reader's message.
    schema = tmp_path / "search.yaml"
    schema.write_text(yaml.safe_dump({"query_text": "query", "item_id": "sku", "click_label": "clicked"}))
    header = tmp_path / "header.csv"
    header.write_text("query,sku,clicked\n")
    run = ["--schema", str(schema), "--shape", "search", "--output-dir", str(tmp_path / "run")]
    assert main(["train", "--data", str(header), *run]) == 2
    err = capsys.readouterr().err
    assert f"no data rows in any file: {header} (only a header)" in err, err
    latin = tmp_path / "latin.csv"
    latin.write_bytes("query,sku,clicked\ncaf\xe9,a,0\n".encode("latin-1"))
    assert main(["train", "--data", str(latin), *run]) == 2
    err = capsys.readouterr().err
    assert "latin.csv' as CSV with encoding 'utf-8'" in err and "give --encoding latin-1" in err


def test_the_decode_error_offset_is_exact_across_read_chunks(tmp_path):
    # A 2-byte character cut by the reader's 1 MiB chunks, then invalid: the offset is its first byte.
    head = b"sku,price,clicked\n"
    data = head + b"a" * ((1 << 20) - 1 - len(head)) + b"\xc3x,1.0,0\n"
    path = tmp_path / "edge.csv"
    path.write_bytes(data)
    with pytest.raises(DataFileError, match=r"edge\.csv.*not utf-8 at byte 1048575 \(line 2, column 'sku'"):
        read_tables(str(path), FeatureSchema.from_yaml(_schema(tmp_path)))


def test_rows_rejected_after_reading_keep_their_file_and_row(tmp_path):
    # The training path rejects rows after reading (a quantity that is not a number): they keep file and row,
    # and the rejected rows (raw text next to typed values) can still be written.
    path = _good_csv(tmp_path / "tx.csv", [("a", 1.0, 0), ("b", -1.0, 1), ("c", 2.0, 0), ("d", 3.0, 1)])
    pd.read_csv(path).assign(qty=["1", "2", "3", "x"]).to_csv(path, index=False)
    tables = read_tables(path, FeatureSchema.from_yaml(_schema(tmp_path)), required_extra=["qty"])
    assert tables.row_numbers.tolist() == [1, 3, 4]
    tables = reject_rows(tables, pd.to_numeric(tables.frame["qty"], errors="coerce").isna().to_numpy(), "qty: NaN")
    assert tables.row_numbers.tolist() == [1, 3] and tables.rejected["_row"].tolist() == [2, 4]
    assert tables.rejected_examples() == {"price: negative value": f"{path} row 2", "qty: NaN": f"{path} row 4"}
    tables.rejected.to_parquet(tmp_path / "rejected.parquet")
    assert len(pd.read_parquet(tmp_path / "rejected.parquet")) == 2


def test_the_training_log_prints_the_readers_warnings(tmp_path, capsys):
    # `tfrec train` logs the same per-file warnings as `tfrec validate` (header-only files, duplicated rows).
    from tfrec.jobs.config import JobConfig
    from tfrec.jobs.files import FilesSource

    schema = tmp_path / "search.yaml"
    schema.write_text(yaml.safe_dump({"query_text": "query", "item_id": "sku", "click_label": "clicked"}))
    rows = [(f"q{i % 30}", f"i{i}", i % 2) for i in range(300)] + [("q0", "i0", 0)]  # repeats row 1
    good = tmp_path / "day1.csv"
    pd.DataFrame(rows, columns=["query", "sku", "clicked"]).to_csv(good, index=False)
    header = tmp_path / "day2.csv"
    header.write_text("query,sku,clicked\n")
    data = {"source": "files", "shape": "search", "paths": [str(good), str(header)], "schema": str(schema)}
    FilesSource().read(JobConfig.from_dict({"data": data, "output_dir": str(tmp_path / "run")}), None)
    out = capsys.readouterr().out
    assert f"warning: {header}" in out, out
    assert "1 row(s) repeat an earlier row exactly: row 301 (row 301 repeats row 1)" in out, out
