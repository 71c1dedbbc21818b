"""Selection, the dataset split, walkers and bootstrap: logic on small inputs."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from conftest import tiny_config

from psiflow_pipeline import settings
from psiflow_pipeline.bootstrap import rattled_frames
from psiflow_pipeline.config import validate
from psiflow_pipeline.data import Frames
from psiflow_pipeline.dataset import extend, is_validation, split
from psiflow_pipeline.models.uncertainty import uncertainty
from psiflow_pipeline.sampling import starting_points
from psiflow_pipeline.selection import select


def candidates(deviations, statuses=None, walkers=None):
    images = [bulk("Cu", cubic=True) for _ in deviations]
    frames = Frames.from_atoms(images, status="ok")
    frames.frame["deviation"][:] = deviations
    frames.frame["identifier"][:] = [f"c{k}" for k in range(len(deviations))]
    frames.frame["walker"][:] = walkers if walkers is not None else 0
    frames.frame["step"][:] = np.arange(len(deviations))
    if statuses:
        frames.frame["status"][:] = statuses
    return frames


def test_selection_keeps_trust_region_most_uncertain_first_and_caps():
    frames = candidates([0.01, 0.2, 0.9, 0.4, np.nan, 0.3, 0.25])
    selected = select(frames, "committee", trust_lo=0.05, trust_hi=0.5, max_frames=3)
    assert sorted(selected.frame["identifier"]) == ["c3", "c5", "c6"]  # 0.4, 0.3, 0.25: not 0.9, not NaN


def test_selection_skips_reset_frames():
    frames = candidates([0.2, 0.3], statuses=["ok", "reset"])
    assert list(select(frames, "committee", 0.0, 1.0, 10).frame["identifier"]) == ["c0"]


def test_committee_selection_spreads_over_walkers_and_caps_each():
    frames = candidates([0.9, 0.8, 0.7, 0.2, 0.1, 0.3], walkers=[0, 0, 0, 1, 1, 2])
    picked = select(frames, "committee", 0.0, 1.0, max_frames=4)
    assert list(picked.frame["identifier"]) == ["c0", "c1", "c3", "c5"]  # one per walker, then deeper
    capped = select(frames, "committee", 0.0, 1.0, max_frames=10, max_per_walker=1)
    assert sorted(capped.frame["walker"]) == [0, 1, 2]


def test_final_state_selection_takes_each_walkers_last_sane_frame():
    frames = candidates([0.1, 0.2, 0.3, 5.0, 0.1, 0.2], walkers=[0, 0, 0, 0, 1, 1])
    picked = select(frames, "final", 0.05, 1.0, max_frames=10)
    assert list(picked.frame["identifier"]) == ["c2", "c5"]  # c3 is above trust_hi


def test_diverse_selection_takes_uncertain_frames_that_differ_not_near_copies():
    base = bulk("Cu", cubic=True).repeat(2)
    images = []
    for k in range(4):  # near-copies of one frame (a walker a few steps on), the most uncertain
        copy = base.copy()
        copy.rattle(0.001, seed=k)
        images.append(copy)
    compressed = base.copy()
    compressed.set_cell(base.cell * 0.93, scale_atoms=True)
    distorted = base.copy()
    distorted.rattle(0.25, seed=7)
    images += [compressed, distorted]
    frames = Frames.from_atoms(images, status="ok")
    frames.frame["deviation"][:] = [0.50, 0.49, 0.48, 0.47, 0.30, 0.20]
    frames.frame["walker"][:] = 0
    frames.frame["step"][:] = np.arange(6)
    assert list(select(frames, "committee", 0.1, 1.0, 3).frame["deviation"]) == [0.50, 0.49, 0.48]
    diverse = select(frames, "diverse", 0.1, 1.0, 3)
    assert list(diverse.frame["deviation"]) == [0.50, 0.30, 0.20]  # one of the copies, then the different frames
    assert list(select(frames, "diverse", 0.1, 1.0, 3).frame["step"]) == list(diverse.frame["step"])  # reproducible
    inside = select(frames, "diverse", 0.25, 1.0, 3).frame["deviation"]  # 0.20 lies below trust_lo
    assert {0.50, 0.30} < set(inside) and 0.20 not in inside
    frames.frame["walker"][:] = [0, 1, 2, 3, 0, 0]
    capped = select(frames, "diverse", 0.1, 1.0, 6, max_per_walker=1)
    assert list(capped.frame["walker"]) == [0, 1, 2, 3]


def test_random_selection_is_seeded_and_stays_below_trust_hi():
    frames = candidates(list(np.linspace(0, 2, 40)), walkers=[k % 4 for k in range(40)])
    first = select(frames, "random", 0.5, 1.0, 5, rng=np.random.default_rng(3))
    again = select(frames, "random", 0.5, 1.0, 5, rng=np.random.default_rng(3))
    assert list(first.frame["identifier"]) == list(again.frame["identifier"]) and len(first) == 5
    assert (first.frame["deviation"] <= 1.0).all()
    everything = select(frames, "random", 0.5, 1.0, 100, rng=np.random.default_rng(3))
    assert len(everything) == 20 and everything.frame["deviation"].min() < 0.5  # the baseline ignores trust_lo
    per_walker = select(frames, "random", 0.0, 2.0, 40, max_per_walker=2, rng=np.random.default_rng(3))
    assert np.bincount(per_walker.frame["walker"]).max() == 2


def test_validation_membership_is_stable_when_data_grows():
    ids = [f"i{i}-w{w}-s{s}" for i in range(3) for w in range(4) for s in range(0, 100, 10)]
    first = is_validation(ids[:40], 0.2)
    later = is_validation(ids, 0.2)
    assert np.array_equal(first, later[:40])
    assert 0.1 < later.mean() < 0.3


def test_dataset_extends_with_successful_labels_only():
    old = candidates([0.1, 0.2])
    new = candidates([0.3, 0.4, 0.5], statuses=["ok", "failed", "ok"])
    new.frame["identifier"][:] = ["n0", "n1", "n2"]
    dataset = extend(old, new)
    assert list(dataset.frame["identifier"]) == ["c0", "c1", "n0", "n2"]
    train, valid = split(dataset, 0.5)
    assert len(train) + len(valid) == 4
    with pytest.raises(ValueError, match="twice"):
        extend(dataset, new)


def walkers_at(iteration, *groups):
    return settings.walkers(validate(tiny_config(walkers=list(groups)), "tiny.yaml"), iteration)


def test_walker_temperatures_go_round_robin():
    walkers = walkers_at(1, {"count": 5, "temperature": [300, 400], "pressure_bar": [1, 2, 3]})
    assert [w["temperature"] for w in walkers] == [300, 400, 300, 400, 300]
    assert [w["pressure_bar"] for w in walkers] == [1, 2, 3, 1, 2]


def test_batched_walkers_share_a_task_only_with_walkers_that_move_alike():
    config = validate(
        tiny_config(
            walkers=[
                {"count": 5, "temperature": [300, 400], "propagate": "member", "batch": 2},
                {"count": 1, "ensemble": "npt"},
                {"count": 3, "ensemble": "nve", "batch": 8},
                {"count": 1, "ensemble": "nve", "batch": 8, "timestep": 0.25},
            ]
        ),
        "tiny.yaml",
    )
    sample = settings.sample(config, 1)
    # members of a committee of 2: walkers 0, 2, 4 follow member 0 and 1, 3 member 1
    assert sample["batches"] == [[0, 2], [1, 3], [4], [5], [6, 7, 8], [9]]
    assert all("batch" not in walker for walker in sample["walkers"])
    unbatched = settings.sample(validate(tiny_config(walkers=[{"count": 3}]), "tiny.yaml"), 1)
    # without batching the params are what they were before walkers could be batched
    assert "batches" not in unbatched and all("batch" not in walker for walker in unbatched["walkers"])


def test_bootstrap_is_reproducible_and_rattled():
    atoms = bulk("Cu", cubic=True) * (2, 2, 2)
    a = rattled_frames([atoms], 4, 0.05, 0.02, seed=1)
    b = rattled_frames([atoms], 4, 0.05, 0.02, seed=1)
    c = rattled_frames([atoms], 4, 0.05, 0.02, seed=2)
    assert np.array_equal(a.atom["positions"], b.atom["positions"])
    assert not np.array_equal(a.atom["positions"], c.atom["positions"])
    assert len(set(a.frame["identifier"])) == 4
    volumes = [abs(np.linalg.det(cell)) for cell in a.frame["cell"]]
    assert np.std(volumes) > 0  # strained


def test_walkers_start_at_their_structure_then_continue_unless_reset():
    atoms = bulk("Cu", cubic=True)
    walkers = [{"structure": 0}] * 3
    first = starting_points(None, [atoms], walkers)
    assert [step for _, step, _ in first] == [0, 0, 0]
    assert np.array_equal(first[2][0].positions, atoms.positions)
    moved = atoms.copy()
    moved.positions += 0.1
    previous = Frames.from_atoms([moved] * 3, status="ok", step=40)
    previous.frame["status"][1] = "reset"
    previous.frame["bias"][:] = '{"HILLS": "x"}'
    points = starting_points(previous, [atoms], walkers)
    assert [step for _, step, _ in points] == [40, 0, 40]  # the reset walker starts over
    assert np.allclose(points[0][0].positions, moved.positions) and points[0][2] == {"HILLS": "x"}
    assert np.array_equal(points[1][0].positions, atoms.positions) and points[1][2] == {}
    with pytest.raises(ValueError, match="has 3 walkers, the config asks for 2"):
        starting_points(previous, [atoms], walkers[:2])


def test_uncertainty_is_largest_per_atom_force_spread_and_energy_std():
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.1, seed=1)
    atoms.calc = EMT()
    forces = atoms.get_forces()
    assert uncertainty(np.array([1.0, 1.0]), np.stack([forces, forces])) == (0.0, 0.0)
    shifted = forces.copy()
    shifted[2] += [0.3, 0.0, 0.4]  # one atom off by 0.5 eV/Å in one member
    deviation, energy_deviation = uncertainty(np.array([1.0, 1.2]), np.stack([forces, shifted]))
    assert deviation == pytest.approx(0.25)
    assert energy_deviation == pytest.approx(0.1)


def test_schedules_change_walker_settings_from_their_iteration():
    group = {"count": 2, "temperature": 300, "steps": 100}
    group["schedule"] = [{"from_iteration": 3, "temperature": [500, 600]}, {"from_iteration": 2, "steps": 50}]
    assert [w["temperature"] for w in walkers_at(1, group)] == [300, 300]
    assert [(w["temperature"], w["steps"]) for w in walkers_at(2, group)] == [(300, 50), (300, 50)]
    assert [(w["temperature"], w["steps"]) for w in walkers_at(4, group)] == [(500, 50), (600, 50)]
    assert "schedule" not in walkers_at(4, group)[0] and "count" not in walkers_at(4, group)[0]


def test_canonical_settings_do_not_depend_on_how_numbers_are_written_or_keys_ordered():
    assert settings.canonical({"b": [300.0, 0.5], "a": {"y": 1.0, "x": True}}) == {
        "a": {"x": True, "y": 1},
        "b": [300, 0.5],
    }
    assert repr(settings.canonical({"t": 300.0, "s": 2})) == repr(settings.canonical({"s": 2.0, "t": 300}))
    assert settings.canonical(float("nan")) != settings.canonical(0)  # non-finite stays a float


def test_a_schedule_entry_changes_the_settings_of_its_iteration_and_later_only():
    config = validate(tiny_config(iterations=5), "tiny.yaml")
    before = {
        i: (settings.sample(config, i), settings.selection(config, i), settings.training(config, i)) for i in range(6)
    }
    config["walkers"][0]["schedule"] = [{"from_iteration": 3, "temperature": [500, 600]}]
    config["selection"]["schedule"] = [{"from_iteration": 4, "trust_lo": 0.2}]
    config["model"]["schedule"] = [{"from_iteration": 2, "max_epochs": 9}, {"from_iteration": 4, "max_epochs": 12}]
    after = {
        i: (settings.sample(config, i), settings.selection(config, i), settings.training(config, i)) for i in range(6)
    }
    changed = {
        name: [i for i in range(6) if before[i][k] != after[i][k]] for k, name in enumerate(("sample", "sel", "train"))
    }
    assert changed == {"sample": [3, 4, 5], "sel": [4, 5], "train": [2, 3, 4, 5]}
    assert [settings.training(config, i)["max_epochs"] for i in range(6)] == [2, 2, 9, 9, 12, 12]
    assert [w["temperature"] for w in settings.sample(config, 3)["walkers"]] == [500, 600]


def test_execution_settings_and_file_paths_are_never_part_of_a_jobs_settings(tmp_path):
    config = validate(tiny_config(iterations=2), "tiny.yaml")

    def steps(c):
        per_iteration = [f(c, i) for i in (1, 2) for f in (settings.sample, settings.selection, settings.training)]
        return [
            settings.bootstrap(c),
            settings.label(c),
            settings.evaluation(c),
            settings.summary(c, 2),
        ] + per_iteration

    before = steps(config)
    moved = tmp_path / "water_8.xyz"
    moved.write_bytes(open(config["system"]["structures"][0], "rb").read())
    config["system"]["structures"] = [str(moved)]  # the same content elsewhere
    config["execution"]["label"].update(walltime_s=7, omp_threads=4, mpi_ranks=2, mode="fresh", executable="cp2k")
    config["execution"]["train"].update(threads=16, accelerator="gpu", gpus=1)
    config["execution"]["sample"].update(cores=64, provider="slurm")
    config["model"]["compile"] = False
    config["reference"]["max_failed_fraction"] = 0.9
    assert steps(config) == before


def test_progress_counts_finished_tasks_and_estimates_the_time_left(caplog):
    from psiflow_pipeline.logs import Progress

    caplog.set_level("INFO", logger="psiflow")
    progress = Progress(4, "single points", done=1)  # one from a cache
    line = progress.finished("frame a: ok")
    assert line.startswith("frame a: ok; 2 of 4 single points done, about ") and line.endswith(" s left")
    progress.finished("frame b: ok")
    assert progress.finished("frame c: failed").endswith("4 of 4 single points done")
    assert caplog.text.count("single points done") == 3


def test_stress_labels_and_stress_training_follow_walkers_that_change_the_cell():
    nvt = validate(tiny_config(), "tiny.yaml")
    assert not settings.stress_labels(nvt) and not settings.label(nvt)["stress"]
    assert settings.training(nvt, 1)["stress"] is False and "stress_weight" not in settings.training(nvt, 1)
    npt = validate(tiny_config(walkers=[{"ensemble": "npt"}]), "tiny.yaml")
    assert settings.stress_labels(npt) and settings.label(npt)["stress"]
    assert settings.training(npt, 1)["stress"] is True and settings.training(npt, 1)["stress_weight"] == 100
    relaxed = validate(tiny_config(walkers=[{"ensemble": "opt", "optimize_cell": True}]), "tiny.yaml")
    assert settings.stress_labels(relaxed)
    forced = validate(tiny_config(reference={"input": "x", "stress": True}), "tiny.yaml")
    assert settings.stress_labels(forced)  # asked for, with NVT walkers


def test_training_settings_hold_only_what_the_learning_rate_schedule_uses():
    from psiflow_pipeline.models.training_config import training_config

    plateau = settings.training(validate(tiny_config(), "tiny.yaml"), 1)
    # as before the key existed: a study made then reruns no training
    assert "lr_schedule" not in plateau and plateau["lr_patience"] == 5
    scheduler = training_config("t.xyz", "v.xyz", ["H", "O"], plateau, seed=1)["training_module"]["lr_scheduler"]
    assert scheduler["scheduler"]["_target_"].endswith("ReduceLROnPlateau") and scheduler["scheduler"]["patience"] == 5
    model = {"lr_schedule": "cosine", "max_epochs": 40, "lr_patience": 3}
    cosine = settings.training(validate(tiny_config(model=model), "tiny.yaml"), 1)
    assert cosine["lr_schedule"] == "cosine" and "lr_patience" not in cosine and "lr_factor" not in cosine
    other_patience = dict(model, lr_patience=9)  # changes nothing a cosine schedule does
    assert settings.training(validate(tiny_config(model=other_patience), "tiny.yaml"), 1) == cosine
    scheduler = training_config("t.xyz", "v.xyz", ["H", "O"], cosine, seed=1)["training_module"]["lr_scheduler"]
    assert scheduler["scheduler"] == {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": 40}
    assert scheduler["interval"] == "epoch"


def test_training_config_adds_the_stress_term_only_when_training_on_stress():
    from psiflow_pipeline.models.training_config import training_config

    for group, target in (({}, "EnergyForceLoss"), ({"ensemble": "npt"}, "EnergyForceStressLoss")):
        model = settings.training(validate(tiny_config(walkers=[group]), "tiny.yaml"), 1)
        module = training_config("t.xyz", "v.xyz", ["H", "O"], model, seed=1)["training_module"]
        assert module["loss"]["_target_"] == f"nequip.train.{target}"
    assert module["loss"]["coeffs"]["stress"] == 100 and module["loss"]["ignore_nan"] == {"stress": True}
    assert module["val_metrics"]["coeffs"]["stress_mae"] == pytest.approx(10)  # sqrt of the loss weight


def test_stress_errors_are_in_gpa_over_the_frames_that_have_a_stress():
    from ase.units import GPa

    from psiflow_pipeline.evaluation import _stress_errors

    reference = np.stack([np.eye(3) * 0.01, np.full((3, 3), np.nan)])
    predicted = np.stack([np.eye(3) * 0.01 + 0.5 * GPa, np.zeros((3, 3))])
    assert _stress_errors(reference, predicted) == {
        "stress_rmse_gpa": pytest.approx(0.5),
        "stress_mae_gpa": pytest.approx(0.5),
    }
    assert np.isnan(_stress_errors(reference[1:], predicted[1:])["stress_rmse_gpa"])


def test_calibration_compares_the_sampled_deviation_with_the_largest_true_force_error():
    from psiflow_pipeline.evaluation import calibration, largest_force_errors

    frames = Frames.from_atoms([bulk("Cu", cubic=True) for _ in range(2)])  # 4 atoms each
    frames.atom["forces"][:] = 0.0
    predicted = np.zeros((8, 3))
    predicted[1] = [0.3, 0.4, 0.0]  # frame 0: one atom off by 0.5 eV/Å
    predicted[6] = [0.0, 0.0, -0.2]  # frame 1: 0.2
    assert largest_force_errors(frames, predicted) == pytest.approx([0.5, 0.2])
    deviation = np.array([0.1, 0.2, 0.3, 0.4, np.nan])
    # errors twice the deviation, in the same order: perfectly ranked, scale 2
    assert calibration(deviation, 2 * deviation) == {
        "calibration_rank_correlation": pytest.approx(1.0),
        "calibration_scale": pytest.approx(2.0),
    }
    reversed_order = calibration(deviation[:4], 2 * deviation[:4][::-1])
    assert reversed_order["calibration_rank_correlation"] == pytest.approx(-1.0)
    assert np.isnan(calibration(deviation[:2], deviation[:2])["calibration_scale"])  # too few frames


def test_the_loop_stops_when_every_criterion_set_is_met():
    from psiflow_pipeline.stopping import decide, stop_criteria_set

    deviations = np.array([0.01, 0.05, 0.2, np.nan])  # two at or above trust_lo 0.05, one exploded
    both = {"force_rmse": 0.1, "min_uncertain": 4}
    assert not stop_criteria_set({"force_rmse": None, "min_uncertain": None}) and stop_criteria_set(both)
    decision = decide(0.08, deviations, 0.05, both)
    assert decision["stop"] and decision["uncertain_frames"] == 3
    assert not decide(0.12, deviations, 0.05, both)["stop"]  # the error is not low enough yet
    assert not decide(0.08, deviations, 0.05, dict(both, min_uncertain=3))["stop"]  # 3 uncertain: not fewer than 3
    assert decide(0.5, deviations, 0.05, {"force_rmse": None, "min_uncertain": 4})["stop"]  # only the count is set
    assert not decide(0.0, deviations, 0.05, {"force_rmse": None, "min_uncertain": None})["stop"]


def test_a_cell_that_runs_away_is_a_reason_to_reset():
    from ase.build import bulk

    from psiflow_pipeline.sampling import check_frame

    atoms = bulk("Cu", cubic=True) * (2, 2, 2)
    results = {"energy": 0.0, "forces": np.zeros((len(atoms), 3)), "deviation": 0.0}
    walker = {"min_distance": 0.5, "max_force": 50, "max_volume_change": 0.1, "ensemble": "opt"}
    assert check_frame(atoms, results, walker, 1.0, start_volume=atoms.get_volume() * 1.05) == ""
    reason = check_frame(atoms, results, walker, 1.0, start_volume=atoms.get_volume() / 0.85)
    assert reason == "volume changed by -15.0% this iteration, beyond max_volume_change 0.1"


def test_atoms_too_close_are_found_across_the_cell_boundary_and_in_a_molecule_without_a_cell():
    from ase import Atoms
    from ase.build import bulk, fcc111, molecule

    from psiflow_pipeline.geometry import closest_pair
    from psiflow_pipeline.sampling import check_frame

    walker = {"min_distance": 0.5, "max_force": 50, "max_volume_change": 0.1, "ensemble": "opt"}
    crystal = bulk("Cu", cubic=True) * (3, 3, 3)
    results = {"energy": 0.0, "forces": np.zeros((len(crystal), 3)), "deviation": 0.0}
    assert closest_pair(crystal, 0.5) is None and check_frame(crystal, results, walker, 1.0) == ""
    # atom 40 lies on the bottom face (z = 0): atom 5 moved just under the top
    # face above it is 0.3 Å from it only through the boundary
    crystal.positions[5] = crystal.positions[40] + crystal.cell[2] - [0, 0, 0.3]
    assert crystal.get_distance(5, 40) > 10 and crystal.get_distance(5, 40, mic=True) == pytest.approx(0.3)
    i, j, distance = closest_pair(crystal, 0.5)
    assert (i, j) == (5, 40) and distance == pytest.approx(0.3)
    assert check_frame(crystal, results, walker, 1.0) == "atoms 5 and 40 0.30 Å apart, below min_distance 0.5"
    water = molecule("H2O")  # no cell, not periodic
    assert closest_pair(water, 0.5) is None
    i, j, distance = closest_pair(water, 1.0)  # O and either H
    assert i == 0 and j in (1, 2) and distance == pytest.approx(water.get_distance(0, 1))
    assert closest_pair(Atoms("H"), 0.5) is None
    slab = fcc111("Cu", (3, 3, 3))  # periodic in x and y only, no third vector
    slab.pbc, slab.cell[2] = [True, True, False], 0.0
    slab.positions[4] = slab.positions[13] + [0.2, 0, 0] - slab.cell[0]
    distances = slab.get_all_distances(mic=True) + np.diag(np.full(len(slab), np.inf))
    assert closest_pair(slab, 0.5) == (4, 13, pytest.approx(distances.min())) and distances.min() < 0.5


def test_rdf_of_a_simple_cubic_lattice_counts_its_shells():
    """Coordination numbers from g(r): 6 neighbours at a, 12 at a√2, 8 at a√3."""
    from ase import Atoms

    from psiflow_pipeline.validation import first_peak, rdf_range, rdfs

    a = 2.0
    lattice = Atoms("Ar", positions=[[0, 0, 0]], cell=[a, a, a], pbc=True) * (4, 4, 4)
    assert rdf_range(lattice) == pytest.approx(4.0)
    r, g = rdfs([lattice], [("Ar", "Ar")], 4.0, 400)[("Ar", "Ar")]
    edges = np.linspace(0, 4.0, 401)
    volumes = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    shells = np.cumsum(g * volumes * (len(lattice) - 1) / lattice.get_volume())  # neighbours of an atom
    assert shells[r < 2.4][-1] == pytest.approx(6)
    assert shells[r < 3.1][-1] == pytest.approx(18)
    assert shells[r < 3.6][-1] == pytest.approx(26)
    assert first_peak(r, g)[0] == pytest.approx(a, abs=0.01)


def test_rdf_of_an_ideal_gas_is_one_and_the_difference_of_equal_structures_zero():
    from ase import Atoms

    from psiflow_pipeline.validation import pairs_of, rdf_difference, rdfs

    rng = np.random.default_rng(4)
    images = [Atoms("H100O100", positions=rng.uniform(0, 12, (200, 3)), cell=[12, 12, 12], pbc=True) for _ in range(20)]
    assert pairs_of(images[0].numbers) == [("H", "H"), ("H", "O"), ("O", "O")]
    r, g = rdfs(images, [("H", "O")], 6.0, 30)[("H", "O")]
    assert np.abs(g[r > 2] - 1).max() < 0.15
    assert rdf_difference(r, g, g) == 0 and rdf_difference(r, g, np.ones_like(g)) < 0.5


def test_a_first_peaks_error_is_the_spread_of_its_height_over_consecutive_blocks():
    """Two blocks of a lattice at spacings 2.0 and 2.1 Å, whose first peaks differ:
    the error is the standard deviation of the two heights over √2."""
    from ase import Atoms

    from psiflow_pipeline.validation import first_peak, pair_counts, peak_height_errors, rdfs

    def lattice(a):
        return Atoms("Ar", positions=[[0, 0, 0]], cell=[a, a, a], pbc=True) * (4, 4, 4)

    pair = ("Ar", "Ar")
    images = [lattice(2.0)] * 3 + [lattice(2.1)] * 3
    heights = [first_peak(*rdfs(block, [pair], 4.0, 40)[pair])[1] for block in (images[:3], images[3:])]
    assert abs(heights[0] - heights[1]) > 0.1
    errors = peak_height_errors(pair_counts(images, [pair], 4.0, 40), blocks=2)
    assert errors[pair] == pytest.approx(abs(heights[0] - heights[1]) / 2)  # std (ddof 1) of two / √2
    assert peak_height_errors(pair_counts([lattice(2.0)] * 4, [pair], 4.0, 40))[pair] == 0
    assert np.isnan(peak_height_errors(pair_counts(images[:3], [pair], 4.0, 40))[pair])  # fewer frames than blocks


def test_the_runs_of_a_reference_md_are_pooled_frame_by_frame(tmp_path):
    """validation.reference may list several runs: their RDF is that of all their frames."""
    from ase import Atoms
    from ase.io import write

    from psiflow_pipeline.validation import rdfs, read_reference

    rng = np.random.default_rng(5)
    runs = [
        [Atoms("O20", positions=rng.uniform(0, 8, (20, 3)), cell=[8, 8, 8], pbc=True) for _ in range(n)] for n in (3, 1)
    ]
    for k, frames in enumerate(runs):
        write(tmp_path / f"run_{k}.xyz", frames)
    pooled = read_reference([tmp_path / "run_0.xyz", tmp_path / "run_1.xyz"])
    assert len(pooled) == 4
    assert np.allclose([atoms.positions for atoms in pooled], [atoms.positions for atoms in runs[0] + runs[1]])
    g = {k: rdfs(frames, [("O", "O")], 4.0, 20)[("O", "O")][1] for k, frames in enumerate(runs)}
    assert np.allclose(rdfs(pooled, [("O", "O")], 4.0, 20)[("O", "O")][1], (3 * g[0] + g[1]) / 4)
    assert read_reference([]) is None


def test_verdict_says_how_long_the_run_stayed_physical_and_the_largest_rdf_difference():
    from ase import Atoms

    from psiflow_pipeline.validation import ProductionRun, density, verdict

    settings = {"walker": {"steps": 1000, "timestep": 0.5, "ensemble": "nvt", "temperature": 350}}
    structure = {
        "O-O": {"peak": (2.8, 3.1), "peak_error": 0.1, "reference_peak": (2.75, 3.0), "difference": 0.2},
        "H-O": {"peak": (1.8, 1.2), "peak_error": 0.1, "reference_peak": (1.8, 1.3), "difference": 0.05},
    }
    for entry in structure.values():
        entry["reference_peak_error"] = 0.05
    stable = ProductionRun(times_ps=[0.25, 0.5], temperatures=[340, 360], deviations=[0.1, 0.2])
    record = verdict(stable, settings, structure)
    assert record["verdict"] == "stable for 0.5 ps (NVT at 350 K); largest RDF difference O-O 0.200 Å"
    broken = ProductionRun(times_ps=[0.25], temperatures=[340], deviations=[0.1], failure="atoms 1 and 2 0.30 Å apart")
    broken.failed_at_ps = 0.25
    assert verdict(broken, settings, {})["verdict"].startswith("unstable: atoms 1 and 2 0.30 Å apart after 0.25 ps")
    npt = {"walker": {**settings["walker"], "ensemble": "npt"}}
    box = Atoms("H2O", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0]], cell=[3, 3, 3], pbc=True)  # 18.015 u in 27 Å³
    expanded = ProductionRun(times_ps=[0.25, 0.5], temperatures=[350, 350], deviations=[0.1, 0.1])
    expanded.densities = [9.0, 1.1 * density(box)]  # the first half is equilibration
    record = verdict(expanded, npt, {}, [box, box])
    assert record["reference_density_g_cm3"] == pytest.approx(18.015 / 27 * 1.66054, rel=1e-4)
    assert record["verdict"].endswith(
        f"; density {1.1 * density(box):.3f} g/cm³, reference {density(box):.3f} (+10.0 %)"
    )


class Counted(EMT):
    """EMT that counts its evaluations; `scale` makes committee members differ."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale, self.calls = scale, 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        self.results["energy"] *= self.scale
        self.results["forces"] = self.results["forces"] * self.scale


def test_a_propagating_member_moves_the_walker_and_the_rest_are_evaluated_only_when_assessed():
    from ase.md.verlet import VelocityVerlet

    from psiflow_pipeline.models.committee import Committee

    members = [Counted(1.0), Counted(1.1), Counted(0.8)]
    committee = Committee(members, propagator=1)
    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    atoms.calc = committee
    dynamics = VelocityVerlet(atoms, timestep=1.0)
    for _ in range(3):
        dynamics.run(10)
        assessed = committee.assess(atoms)
        energies, forces = Committee(members).predict(atoms)  # the full committee, from scratch
        assert assessed["deviation"] == pytest.approx(uncertainty(energies, forces)[0], rel=1e-12)
        assert assessed["energy_deviation"] == pytest.approx(uncertainty(energies, forces)[1], rel=1e-12)
        np.testing.assert_array_equal(assessed["forces"], forces[1])  # the dynamics follow member 1
    # member 1 once per step (+1 at the start); the others only where assessed
    # (3 times) and by the check above (3 times)
    assert members[1].calls == 31 + 3 and members[0].calls == members[2].calls == 6


def test_a_production_run_following_one_member_records_the_committee_deviation_of_every_checked_frame():
    from psiflow_pipeline.models.committee import Committee
    from psiflow_pipeline.validation import production_md

    members = [Counted(1.0), Counted(1.1)]
    atoms = bulk("Cu", cubic=True).repeat(2)
    settings = {
        "ensemble": "nvt", "thermostat": "langevin", "temperature": 300, "timestep": 1.0, "friction": 0.01,
        "tdamp": 100.0, "steps": 30, "stride": 10,
        "min_distance": 0.5, "max_force": 100.0, "max_temperature_factor": 10.0, "max_volume_change": 0.5,
    }  # fmt: skip
    run = production_md(atoms, Committee(members, propagator=0), settings, trust_hi=10.0, seed=3)
    assert not run.failure and len(run.frames) == 3
    for frame, deviation in zip(run.frames, run.deviations):
        energies, forces = Committee(members).predict(frame)
        assert deviation == pytest.approx(uncertainty(energies, forces)[0], rel=1e-12) and deviation > 0


def test_a_production_run_logs_its_last_step(caplog):
    """The overhead benchmark counts the validation MD from its first to its
    last progress line: the end must be logged, not only every 5 %."""
    from psiflow_pipeline.models.committee import Committee
    from psiflow_pipeline.validation import production_md

    settings = {
        "ensemble": "nvt", "thermostat": "langevin", "temperature": 300, "timestep": 1.0, "friction": 0.01,
        "tdamp": 100.0, "steps": 410, "stride": 10,
        "min_distance": 0.5, "max_force": 100.0, "max_temperature_factor": 10.0, "max_volume_change": 0.5,
    }  # fmt: skip
    with caplog.at_level("INFO", logger="psiflow"):
        production_md(bulk("Cu", cubic=True), Committee([Counted(1.0)]), settings, trust_hi=10.0, seed=3)
    lines = [record.getMessage() for record in caplog.records if "MD steps done" in record.getMessage()]
    assert len(lines) < 41  # every 5 % (20.5 steps), not every saved frame
    assert lines[-1].startswith("0.41 ps:") and lines[-1].endswith("410 of 410 MD steps done")


def test_a_walker_task_times_its_md_not_the_loading_of_its_models(tmp_path, monkeypatch):
    """The overhead benchmark takes a walker task's seconds as science: the
    models (loaded once per worker, 1-2 s each) are loaded before the clock."""
    import time

    from psiflow_pipeline.models import committee
    from psiflow_pipeline.sampling import WalkerTask, run_walkers

    def slow_load(path, device=None, batched=False):
        time.sleep(1.0)
        return EMT()

    monkeypatch.setattr(committee, "load_calculator", slow_load)
    model = tmp_path / "member.nequip.zip"
    model.write_text("")  # shared models are keyed by path and modification time
    walker = {"temperature": 300, "steps": 20, "stride": 10, "max_temperature_factor": 100.0}
    walker_settings = settings.walkers(validate(tiny_config(walkers=[walker]), "tiny.yaml"), 1)[0]
    task = WalkerTask(0, bulk("Cu", cubic=True), walker_settings, [str(model)], 1, 0, 1e9, 7, 1, {}, str(tmp_path))
    start = time.perf_counter()
    [result] = run_walkers([task])
    wall = time.perf_counter() - start
    assert len(result.frames) == 2 and wall > 1.0
    assert result.seconds < wall - 0.9
