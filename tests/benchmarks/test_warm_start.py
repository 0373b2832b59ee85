"""benchmarks/warm_start.py's table and ratios come from its figures (nothing is run)."""

from benchmarks import warm_start


def _arm(name, wall, trainer, epochs, released, mnist, span):
    return {
        "name": name,
        "wall_s": wall,
        "exit_code": 0 if released else 2,
        "trainer_s": trainer,
        "epochs_run": epochs,
        "released": released,
        "not_released_reason": "" if released else "below the baseline",
        "mnist_test_accuracy": mnist,
        "span_test_accuracy": span,
        "component_s": {"Transform": 7.0, "Trainer": trainer},
    }


def test_the_table_and_ratios_are_the_figures():
    results = {
        "base": _arm("base (cold, MNIST only)", 90.0, 30.0, 40, 11, 0.9729, None),
        "cold": _arm("cold", 100.0, 32.0, 40, 12, 0.9741, 0.9700),
        "warm": _arm("warm", 76.0, 4.0, 4, None, 0.9735, 0.9712),
        "trainer_ratio": warm_start._ratio(4.0, 32.0),
        "run_ratio": warm_start._ratio(76.0, 100.0),
        "fixed_s": {"Transform": {"cold": 7.0, "warm": 7.2}},
        "smoke": False,
    }
    table = warm_start.render(results)
    assert "| cold | 100.0 s | 32.0 s | 40 | 0.9741 | 0.9700 | 12 |" in table
    assert "| warm | 76.0 s | 4.0 s | 4 | 0.9735 | 0.9712 | no: below the baseline |" in table
    assert "warm / cold: Trainer 0.125, whole run 0.760" in table
    assert "fixed costs (cold / warm): Transform 7.0 / 7.2 s" in table
    assert "MNIST test 0.9729 -> 0.9735" in table
    assert warm_start._ratio(None, 3.0) is None
