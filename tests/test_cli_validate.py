"""`tfrec validate`: the reader and validation of `tfrec train --data`, from the command line."""

import pandas as pd
import yaml

from tfrec.cli import main


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
    assert "header.csv: a header and no data rows" in err and "no data rows in any file" in err
    dup = tmp_path / "dup.parquet"
    pd.DataFrame({"sku": ["a", "a", "b"], "price": [1.0, 1.0, 2.0], "clicked": [0, 0, 1]}).to_parquet(dup)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["validate", "--data", str(dup), str(header), "--schema", _schema(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "dup.parquet: 1 row(s) repeat an earlier row exactly" in err and "header.csv" in err
    assert main(["validate", "--data", str(empty), "--schema", _schema(tmp_path)]) == 2
    assert "empty.csv" in capsys.readouterr().err
