"""Table specs: the YAML users write is validated with errors that name the file and entry."""

from pathlib import Path

import pytest

from parquetry.extract.spec import TableSpec, TableSpecError, load_table_specs, split_relation


def test_shipped_tables_yaml_describes_the_demo_database():
    specs = load_table_specs(Path(__file__).resolve().parents[2] / "config" / "tables.yaml")
    by_name = {s.name: s for s in specs}
    assert set(by_name) == {"customers", "orders", "order_items"}
    assert by_name["orders"].time_column == "ordered_at"
    assert by_name["orders"].is_partitioned and not by_name["customers"].is_partitioned


def test_yaml_specs_load_with_all_fields(tmp_path):
    path = tmp_path / "tables.yaml"
    path.write_text(
        "tables:\n"
        "  - name: sales\n"
        '    relation: \'"Sales"."Ünïcode Table"\'\n'
        '    columns: [id, "select"]\n'
        "    where: id > 10\n"
        "    time_column: sold_at\n"
        "    start_date: 2024-02-01\n"
        "  - name: recent\n"
        "    query: SELECT 1 AS one\n",
        encoding="utf-8",
    )
    sales, recent = load_table_specs(path)
    assert sales.columns == ("id", "select")
    assert sales.start_date == "2024-02-01"  # YAML dates come back as ISO text
    assert recent.query == "SELECT 1 AS one" and recent.relation is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tables: 3\n", "'tables' list"),
        ("tables:\n  - relation: t\n", "'name' is required"),
        ("tables:\n  - name: a\n    relation: t\n    colums: [x]\n", "unknown key(s) ['colums']"),
        ("tables:\n  - name: a\n", "exactly one of 'relation' and 'query'"),
        ("tables:\n  - name: a\n    relation: t\n    query: SELECT 1\n", "exactly one"),
        ("tables:\n  - name: a b\n    relation: t\n", "plain identifier"),
        ("tables:\n  - name: a\n    relation: t\n    time_column: ts\n", "go together"),
        (
            "tables:\n  - name: a\n    relation: t\n    time_column: ts\n    start_date: '2024-13-01'\n",
            "YYYY-MM-DD",
        ),
        (
            "tables:\n  - name: a\n    relation: t\n    time_column: ts\n    start_date: 2024-13-01\n",
            "invalid YAML",
        ),
        ("tables:\n  - name: a\n    relation: t\n  - name: a\n    relation: u\n", "duplicate table name"),
        ("tables:\n  - name: a\n    relation: '\"unterminated'\n", "unterminated"),
        ("tables:\n  - name: a\n    relation: t\n    columns: x\n", "'columns' must be a list"),
        ("tables: [\n", "invalid YAML"),
    ],
)
def test_invalid_specs_are_refused_naming_file_and_entry(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TableSpecError) as info:
        load_table_specs(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_relation_names_split_like_postgresql_parses_them():
    assert split_relation("public.Orders") == ("public", "orders")
    assert split_relation("Orders") == (None, "orders")
    assert split_relation('"Sales"."Ünïcode Table"') == ("Sales", "Ünïcode Table")
    assert split_relation('"a.b"."c""d"') == ("a.b", 'c"d')
    with pytest.raises(TableSpecError):
        split_relation("a.b.c")


def test_spec_in_code_is_validated_too():
    with pytest.raises(TableSpecError, match="start_date"):
        TableSpec(name="x", relation="t", time_column="ts", start_date="yesterday")
