"""runner.py bench's decode rates (benchmark/commands/decoderate.py)."""


def test_bench_measures_each_decode_backend_side_by_side():
    from benchmark.commands.decoderate import decode_rates

    rows = decode_rates("cpu", images=4, batch_size=2, size=(64, 48))
    assert [r["backend"] for r in rows] == ["pil", "nvjpeg"]
    assert all(r["images"] == 4 and r["images_per_s"] > 0 for r in rows)
