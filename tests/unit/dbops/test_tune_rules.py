from lighthouse_ops.dbops import tune


def test_seed_runbook3_values_on_a_t4g_small():
    got = {s.name: s.value for s in tune.recommend(tune.HostFacts(2 * tune.GiB, 2))}
    assert got["shared_buffers"] == "512MB"
    assert got["effective_cache_size"] == "1536MB"
    assert got["maintenance_work_mem"] == "128MB"
    assert got["work_mem"] == "16MB"
    assert got["max_connections"] == "100"
    assert got["max_parallel_workers_per_gather"] == "1"


def test_scales_with_ram_and_caps():
    got = {s.name: s.value for s in tune.recommend(tune.HostFacts(64 * tune.GiB, 16))}
    assert got["shared_buffers"] == "8192MB"  # capped
    assert got["maintenance_work_mem"] == "2048MB"  # capped
    assert got["work_mem"] == "256MB"
    assert got["max_parallel_workers"] == "16"
    small = {s.name: s.value for s in tune.recommend(tune.HostFacts(512 * tune.MiB, 1))}
    assert small["shared_buffers"] == "128MB" and small["work_mem"] == "4MB"


def test_host_fact_parsers():
    assert tune.parse_meminfo("MemTotal:        2000000 kB\nMemFree: 1 kB\n") == 2_048_000_000
    cpuinfo = "processor\t: 0\nx\nprocessor\t: 1\nprocessor\t: 2\nprocessor\t: 3\n"
    assert tune.parse_cpus(cpuinfo) == 4
    assert tune.parse_cpus(cpuinfo, "200000 100000") == 2
    assert tune.parse_cpus(cpuinfo, "max 100000") == 4


def test_unit_normalisation():
    assert tune.to_base("16384", "8kB") == 128 * tune.MiB
    assert tune.to_base("128MB", "8kB") == 128 * tune.MiB
    assert tune.to_base("4096", "kB") == 4 * tune.MiB
    assert tune.to_base("100", None) == 100
