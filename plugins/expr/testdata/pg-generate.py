#!/usr/bin/env python3
"""Regenerates postgresql.json: what a real PostgreSQL answers for every expression of
expressions.txt against every loader of loaders.json, in a `loaders` table shaped like
MIG's (env/tags/attributes json, name varchar, loadername varchar).

  pg   = SELECT (true AND (<expr>)) FROM loaders WHERE id=N   -> "true" | "false" | "null" | "error"
  mig  = SELECT 1 FROM loaders WHERE id=N AND <expr>          -> MIG's raw splice: did it return a row?

Usage (needs a throw-away server; nothing else uses it):
  initdb -D /tmp/pg/data -A trust -E UTF8 --locale=C.UTF-8
  pg_ctl -D /tmp/pg/data -o "-k /tmp/pg -c listen_addresses=''" start
  PGHOST=/tmp/pg PGUSER=postgres ./pg-generate.py > postgresql.json
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def psql(sql, db="postgres"):
    p = subprocess.run(
        ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
        capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip().splitlines()[0] if p.stderr.strip() else "error"
    return p.stdout.strip(), None


def lit(v):
    # Compact, as Go's json.Marshal wrote it into MIG's json columns; Go marshals a nil map
    # as the JSON text null (not SQL NULL), which is how MIG stored a loader without tags.
    return "'" + json.dumps(v, separators=(",", ":"), ensure_ascii=False).replace("'", "''") + "'::json"


def main():
    loaders = json.load(open(os.path.join(HERE, "loaders.json")))
    exprs = [l.rstrip("\n") for l in open(os.path.join(HERE, "expressions.txt"))
             if l.strip() and not l.startswith("#")]
    psql("DROP DATABASE IF EXISTS migtarget")
    psql("CREATE DATABASE migtarget")
    db = "migtarget"
    out, err = psql("""CREATE TABLE loaders (id numeric PRIMARY KEY, loadername varchar(256) NOT NULL,
        name varchar(2048), env json, tags json, attributes json)""", db)
    assert err is None, err
    ids = {}
    for i, (key, l) in enumerate(loaders.items(), start=1):
        ids[key] = i
        sql = "INSERT INTO loaders VALUES (%d, '%s', '%s', %s, %s, %s)" % (
            i, l["loadername"].replace("'", "''"), l["name"].replace("'", "''"),
            lit(l["env"]), lit(l["tags"]), lit(l["attributes"]))
        _, err = psql(sql, db)
        assert err is None, err
    version, _ = psql("SHOW server_version", db)
    cases = []
    for e in exprs:
        case = {"expr": e, "pg": {}, "mig": {}}
        for key, i in ids.items():
            v, err = psql("SELECT coalesce((true AND (\n%s\n))::text, 'null') FROM loaders WHERE id=%d" % (e, i), db)
            case["pg"][key] = "error" if err else v
            if err:
                case["error"] = err
            v, err = psql("SELECT 1 FROM loaders WHERE id=%d AND %s\n" % (i, e), db)
            case["mig"][key] = "error" if err else ("row" if v else "none")
        cases.append(case)
    json.dump({"postgresql": version, "cases": cases}, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
