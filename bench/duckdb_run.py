"""Runs one of the benchmark's DuckDB SQL files with its parameters: duckdb_run.py FILE key=value..."""
import sys

import duckdb

sql = open(sys.argv[1]).read()
for arg in sys.argv[2:]:
    key, value = arg.split("=", 1)
    sql = sql.replace("{" + key + "}", value)
con = duckdb.connect()
con.execute(sql)
