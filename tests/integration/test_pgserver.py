import psycopg


def test_pg15_fixture_is_a_real_server_that_survives_restart(pg15, pg15_db):
    with psycopg.connect(pg15_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("15")
    pg15.stop()
    pg15.start()
    with psycopg.connect(pg15_db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1
