"""A PostgreSQL table holding every type Parquetry supports, with edge values: the decoder's oracle
test renders it through PostgreSQL, the compactor's tests extract and compact it.

Edge values include the ends of every range (dates 4713 BC and 5874897 AD, numeric up to 76 digits,
infinities and NaN), empty strings against NULL, text that looks like a COPY row header, a 1 MB string,
N-dimensional arrays with NULL elements, ranges, multiranges, composite types, enums and domains.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import psycopg
from psycopg import sql


class _Cluster(Protocol):
    def dsn(self, dbname: str | None = None) -> str: ...


EVERY_TYPE_SETUP = """
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped, "late"');
CREATE DOMAIN positive_price AS numeric(10,2) CHECK (VALUE > 0);
CREATE TYPE address AS (street text, zip int4, tags text[], since date);
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE TABLE dropped_probe (a int);
"""

# (column, SQL type, SQL literals for rows 2..n; row 1 is all NULL)
EVERY_TYPE_COLUMNS: list[tuple[str, str, list[str]]] = [
    ("c_bool", "boolean", ["true", "false"]),
    ("c_int2", "smallint", ["-32768", "32767", "0"]),
    ("c_int4", "integer", ["-2147483648", "2147483647", "0"]),
    ("c_int8", "bigint", ["-9223372036854775808", "9223372036854775807", "1"]),
    ("c_oid", "oid", ["0", "4294967295"]),
    ("c_float4", "real",
     ["'NaN'", "'Infinity'", "'-Infinity'", "1.17549435e-38", "3.4028235e38", "-0.1", "0"]),
    ("c_float8", "double precision",
     ["'NaN'", "'Infinity'", "'-Infinity'", "5e-324", "1.7976931348623157e308", "-0.0", "0.1", "1e15"]),
    ("c_num", "numeric(12,2)", ["0", "-0.01", "9999999999.99", "-9999999999.99", "12.5", "1"]),
    ("c_num38", "numeric(38,10)",
     ["9999999999999999999999999999.9999999999", "-9999999999999999999999999999.9999999999", "0.0000000001"]),
    ("c_num76", "numeric(76,20)",
     ["99999999999999999999999999999999999999999999999999999999.99999999999999999999",
      "-12345678901234567890123456789.12345678901234567890", "0.00000000000000000001"]),
    ("c_num00", "numeric(5,0)", ["-99999", "99999", "0"]),
    ("c_numfree", "numeric",
     ["'NaN'", "'Infinity'", "'-Infinity'", "0", "0.000", "-0.00012300", "123456789012345678901234567890.5",
      "1e-30", "1e40", "10000", "0.1", "-1"]),
    ("c_money", "money", ["-92233720368547758.08", "92233720368547758.07", "12.34", "0"]),
    ("c_text", "text",
     ["''", "'plain'", "E'\\\\x00\\\\x03 looks \\x01\\x02 like'", "E'\\x01\\x02\\x03\\x04\\x05'",
      "'héllo wörld ✓ 𝄞'", "repeat('x', 1000000)", "E'\\x7f\\x7f\\x7f\\x7f\\x01\\x02 ÿÿÿÿ'"]),
    ("c_varchar", "varchar(20)", ["''", "'abc'"]),
    ("c_bpchar", "char(5)", ["''", "'ab'", "'abcde'"]),
    ("c_name", "name", ["'pg_class'", "''"]),
    ("c_char", '"char"', ["'a'", "chr(39)", "E'\\\\001'::\"char\"", "'é'::\"char\""]),
    ("c_bytea", "bytea", ["''::bytea", "'\\x0003ffffffff0000'::bytea", "'\\xffff'::bytea", "'\\x00'::bytea"]),
    ("c_uuid", "uuid", ["'00000000-0000-0000-0000-000000000000'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]),
    ("c_json", "json", ["'{\"a\": [1, 2.5, null]}'", "'\"\\u0000x\"'", "'[]'"]),
    ("c_jsonb", "jsonb", ["'{\"b\": 1, \"a\": [true, \"x\"]}'", "'\"é\"'", "'null'"]),
    ("c_xml", "xml", ["'<a x=\"1\">t</a>'", "''"]),
    ("c_date", "date",
     ["'2000-01-01'", "'1999-12-31'", "'1970-01-01'", "'1969-12-31'", "'0001-01-01'", "'4713-01-01 BC'",
      "'5874897-12-31'", "'infinity'", "'-infinity'"]),
    ("c_ts", "timestamp",
     ["'2000-01-01 00:00:00'", "'1999-12-31 23:59:59.999999'", "'1970-01-01'", "'1900-06-15 12:00:00.5'",
      "'4713-01-01 00:00:00 BC'", "'294246-12-31 23:59:59.999999'", "'infinity'", "'-infinity'"]),
    ("c_tstz", "timestamptz",
     ["'2000-01-01 00:00:00+00'", "'2021-03-28 02:30:00+05:30'", "'1901-01-01 00:00:00-08'", "'infinity'",
      "'-infinity'"]),
    ("c_time", "time", ["'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.5'"]),
    ("c_timetz", "timetz", ["'00:00:00+00'", "'12:34:56.789+05:30'", "'23:59:59-11:45'", "'01:00:00+14'"]),
    ("c_interval", "interval",
     ["'0'", "'1 year 2 mons 3 days 04:05:06.789'", "'-1 mons +3 days -00:00:01'", "'178000000 years'",
      "'-2147483648 days'", "'2562047:47:16.854775'", "'-2562047:47:16.854775'"]),
    ("c_inet", "inet",
     ["'192.168.0.1'", "'192.168.0.1/24'", "'10.0.0.0/8'", "'::1'", "'::ffff:1.2.3.4'", "'2001:db8::/32'",
      "'fe80::1:0:0:0:1/64'", "'::'", "'1:0:0:1:0:0:0:1'", "'::1.2.3.4'"]),
    ("c_cidr", "cidr", ["'192.168.0.0/24'", "'10.1.2.3/32'", "'2001:db8::/32'", "'::/0'"]),
    ("c_macaddr", "macaddr", ["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"]),
    ("c_macaddr8", "macaddr8", ["'08:00:2b:01:02:03:04:05'"]),
    ("c_bit", "bit(10)", ["B'1010101011'", "B'0000000000'"]),
    ("c_varbit", "varbit", ["B''", "B'1'", "B'101010101'"]),
    ("c_enum", "order_status", ["'new'", "'shipped, \"late\"'"]),
    ("c_domain", "positive_price", ["0.01", "12345678.90"]),
    ("c_int4a", "integer[]",
     ["'{}'", "'{1,NULL,3}'", "'{NULL}'", "ARRAY[-2147483648, 2147483647]"]),
    ("c_int8a2", "bigint[][]", ["'{{1,2},{3,NULL}}'", "'{}'", "'{{NULL,NULL,NULL}}'"]),
    ("c_int4a3", "int[][][]", ["'{{{1,2},{3,4}},{{5,6},{7,NULL}}}'"]),
    ("c_texta", "text[]",
     ["ARRAY['', NULL, 'NULL', 'a b', 'q\"uote', 'back\\slash', '{x,y}', 'tab\there']", "ARRAY['plain']"]),
    ("c_numa", "numeric(10,2)[]", ["'{1.5,NULL,-3}'"]),
    ("c_datea", "date[]", ["'{2020-02-29,NULL,1970-01-01}'"]),
    ("c_int4r", "int4range", ["'empty'", "'[1,5)'", "'(,5]'", "'[3,)'", "'(,)'"]),
    ("c_numr", "numrange", ["'[1.5,2.25]'", "'(,0)'"]),
    ("c_dater", "daterange", ["'[2020-01-01,2020-02-01)'", "'empty'"]),
    ("c_tsr", "tsrange", ["'[2020-01-01 10:00,2020-01-01 11:30:00.25)'"]),
    ("c_fr", "floatrange", ["'[1.5,2.5]'", "'(-Infinity,Infinity)'"]),
    ("c_int4ra", "int4range[]", ["ARRAY['[1,2)'::int4range, 'empty', NULL]"]),
    ("c_int4mr", "int4multirange", ["'{}'", "'{[1,3), [5,7)}'"]),
    ("c_addr", "address",
     ["ROW('Main St. 1, \"A\"', 12345, ARRAY['x', NULL], '2020-01-01')::address", "ROW(NULL,NULL,NULL,NULL)",
      "ROW('', 0, '{}', NULL)"]),
    ("c_addra", "address[]", ["ARRAY[ROW('s', 1, NULL, NULL)::address, NULL]"]),
]  # fmt: skip


def create_every_type(conn: psycopg.Connection) -> None:
    """Create the types and the ``every_type`` table in ``conn``'s database and fill it: row 1 all NULL,
    then one row per edge value, and a dropped column in the middle."""
    conn.execute(EVERY_TYPE_SETUP)
    ddl = sql.SQL("CREATE TABLE every_type (id int, {})").format(
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t, _ in EVERY_TYPE_COLUMNS
        )
    )
    conn.execute(ddl)
    nrows = 1 + max(len(v) for _, _, v in EVERY_TYPE_COLUMNS)
    for r in range(nrows):
        values = [sql.Literal(r + 1)]
        for _, t, literals in EVERY_TYPE_COLUMNS:
            lit = literals[r - 1] if 1 <= r <= len(literals) else "NULL"
            values.append(sql.SQL("({})::{}").format(sql.SQL(lit), sql.SQL(t)))
        conn.execute(sql.SQL("INSERT INTO every_type VALUES ({})").format(sql.SQL(", ").join(values)))
    # A dropped column in the middle must not shift anything.
    conn.execute("ALTER TABLE every_type ADD COLUMN gone int DEFAULT 7, ADD COLUMN tail text DEFAULT 'end'")
    conn.execute("ALTER TABLE every_type DROP COLUMN gone")


@contextmanager
def every_type_database(cluster: _Cluster, name: str, copies: int = 1) -> Iterator[str]:
    """A fresh database ``name`` on ``cluster`` holding the ``every_type`` table (its rows ``copies``
    times over); yields its DSN and drops it afterwards."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(cluster.dsn(name), autocommit=True) as conn:
            conn.execute("SET client_encoding = 'UTF8'")
            create_every_type(conn)
            (rows,) = conn.execute("SELECT count(*) FROM every_type").fetchone() or (0,)
            for _ in range(copies - 1):
                conn.execute("INSERT INTO every_type SELECT * FROM every_type ORDER BY id LIMIT %s", [rows])
        yield cluster.dsn(name)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute(drop)
