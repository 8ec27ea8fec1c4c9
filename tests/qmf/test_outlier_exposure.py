"""Energy-bounded outlier exposure: the loss by hand, masks, and recipe options that reach the bundle."""

import numpy as np
import pytest
import torch

from app.qmf.losses import energy_bound_loss, qmf_loss
from app.qmf.outlier_exposure import EnergyBound, outlier_loss


def test_energy_bound_loss_by_hand():
    # logits whose energies are known: E = -logsumexp(z)
    z = torch.tensor([[10.0, 0.0], [2.0, 2.0], [0.0, 0.0], [5.0, 5.0]])
    e = -torch.logsumexp(z, -1)  # [-10.0000454, -2.6931, -0.6931, -5.6931]
    inlier = torch.tensor([True, True, False, False])
    outlier = torch.tensor([False, False, True, True])
    m_in, m_out = -8.0, -3.0
    # inliers: sample 0 is below m_in (no loss), sample 1 is 5.3069 above it
    expected_in = (0.0 + (e[1].item() - m_in) ** 2) / 2
    # outliers: sample 2 is above m_out (no loss), sample 3 is 2.6931 below it
    expected_out = (0.0 + (m_out - e[3].item()) ** 2) / 2
    got = energy_bound_loss(e, inlier, outlier, m_in, m_out)
    assert got.item() == pytest.approx(expected_in + expected_out, rel=1e-5)
    assert got.item() == pytest.approx((5.30685 ** 2) / 2 + (2.69315 ** 2) / 2, rel=1e-4)


def test_energy_bound_gradients_make_foreign_inputs_less_confident_and_clean_ones_more():
    z = torch.tensor([[1.0, 0.0], [6.0, 0.0]], requires_grad=True)
    e = -torch.logsumexp(z, -1)
    loss = energy_bound_loss(e, torch.tensor([True, False]), torch.tensor([False, True]), m_in=-5.0, m_out=-2.0)
    loss.backward()
    assert z.grad[0, 0] < 0  # descent raises the clean input's top logit (lower energy, higher quality)
    assert z.grad[1, 0] > 0  # and lowers the foreign input's


def test_an_empty_side_contributes_nothing_and_no_nan():
    e = torch.tensor([-1.0, -2.0])
    none = torch.tensor([False, False])
    assert energy_bound_loss(e, none, none, -5.0, -3.0).item() == 0.0
    assert energy_bound_loss(e, torch.tensor([True, True]), none, -5.0, -3.0).item() == pytest.approx((16 + 9) / 2)


def test_outlier_loss_sums_branches_with_per_modality_margins_and_degraded_level():
    energies = {"image": torch.tensor([-1.0, -1.0]), "audio": torch.tensor([-1.0, -9.0])}
    foreign = {"image": torch.tensor([False, False]), "audio": torch.tensor([False, True])}
    levels = {"image": torch.tensor([0.0, 9.0]), "audio": torch.tensor([0.0, 0.0])}
    bound = EnergyBound.from_dict({"weight": 0.5, "m_in": {"image": -3.0, "audio": -2.0}, "m_out": -4.0})
    # image: sample 0 clean (E -1 vs m_in -3: 4), sample 1 degraded: neither side; audio: clean 1 -> 1; foreign -9 -> 25
    assert outlier_loss(energies, foreign, levels, bound).item() == pytest.approx(0.5 * (4.0 + 1.0 + 25.0))
    bound.degraded_out_level = 8.0  # the degraded image now counts as an outlier: relu(-4 - -1) = 0
    assert outlier_loss(energies, foreign, levels, bound).item() == pytest.approx(0.5 * (4.0 + 1.0 + 25.0))
    bound.m_out = -0.5  # image: relu(-0.5 + 1)^2 = 0.25 for the degraded one; audio foreign: relu(-0.5 + 9)^2 = 72.25
    assert outlier_loss(energies, foreign, levels, bound).item() == pytest.approx(0.5 * (4.0 + 0.25 + 1.0 + 72.25))


def test_branch_mask_leaves_a_foreign_input_out_of_its_branch_cross_entropy():
    logits = {"image": torch.tensor([[5.0, 0.0], [0.0, 5.0]]), "audio": torch.tensor([[5.0, 0.0], [5.0, 0.0]])}
    y = torch.tensor([0, 0])
    fused = logits["image"] + logits["audio"]
    q = {n: torch.zeros(2) for n in logits}
    full, _ = qmf_loss(logits, fused, q, y, None, 0.0)
    masked, _ = qmf_loss(logits, fused, q, y, None, 0.0,
                         branch_mask={"image": torch.tensor([True, False]), "audio": torch.tensor([True, True])})
    wrong = torch.nn.functional.cross_entropy(logits["image"][1:], y[1:]).item()
    assert full.item() - masked.item() == pytest.approx(wrong / 2, rel=1e-5)
    assert np.isfinite(masked.item())


OE_TRAINING = {
    "outliers": {"probability": 0.4, "families": {"image": ["uniform_noise", "gratings"], "audio": ["tone", "pink_noise"]}},
    "energy_bound": {"weight": 0.1, "m_in": -4.0, "m_out": -1.0},
    "held_out": {"foreign": {"image": ["checkerboard"], "audio": ["hum"]},
                 "degradations": {"image": ["blur"], "audio": ["dropout"]}},
    "augment": [{"modality": "image", "kinds": ["gaussian", "jpeg+speckle"], "levels": [0, 10], "probability": 0.3},
                {"modality": "audio", "kinds": ["white_noise", "reverb"], "levels": [0, 10], "probability": 0.3}],
}


def test_outlier_exposure_trains_foreign_inputs_down_and_its_options_reach_the_bundle(synthetic_pairs, tmp_path):
    import copy

    from app.data.manifest import read_manifest
    from app.modalities import outliers as foreign
    from app.qmf.bundle import read_bundle_manifest, save_bundle
    from app.qmf.predictor import Predictor
    from app.qmf.train import Recipe, bundle_manifest, train
    from tests.synthetic import TINY_RECIPE

    data = copy.deepcopy(TINY_RECIPE)
    data["training"].update(copy.deepcopy(OE_TRAINING), epochs=8)
    rows = read_manifest(synthetic_pairs.train_csv, modalities=["image", "audio"]).rows
    val = read_manifest(synthetic_pairs.val_csv, modalities=["image", "audio"]).rows
    result = train(Recipe.from_dict(data), rows, val, progress=False, log=lambda s: None)
    path = save_bundle(tmp_path / "oe.safetensors", result.model, bundle_manifest(result))

    stored = read_bundle_manifest(path)["training"]["recipe"]["training"]
    for key in ("outliers", "energy_bound", "held_out"):  # every option given, stored as given (defaults added)
        assert {k: stored[key][k] for k in OE_TRAINING[key]} == OE_TRAINING[key]
    assert stored["energy_bound"]["degraded_out_level"] == 0.0
    assert Recipe.from_dict(read_bundle_manifest(path)["training"]["recipe"]).training.energy_bound.m_out == -1.0

    predictor = Predictor.load(path)
    clean = [predictor.load_inputs(r.files) for r in val]
    rng = np.random.default_rng(0)
    noise = [{**c, "image": foreign.generate("image", "uniform_noise", rng, predictor.modalities["image"].params)}
             for c in clean]
    q_clean = np.array([p.modalities["image"].quality for p in predictor.predict_many(clean)])
    q_noise = np.array([p.modalities["image"].quality for p in predictor.predict_many(noise)])
    assert q_noise.mean() < q_clean.mean()


def test_held_out_names_cannot_also_be_trained_on():
    import copy

    from app.qmf.train import Recipe
    from tests.synthetic import TINY_RECIPE

    def check(**training):  # the recipe is checked when it is read
        data = copy.deepcopy(TINY_RECIPE)
        data["training"].update(training)
        Recipe.from_dict(data)

    check(**copy.deepcopy(OE_TRAINING))
    with pytest.raises(ValueError, match="both trained on and held out"):
        check(outliers={"probability": 0.2, "families": {"image": ["checkerboard"]}},
              held_out={"foreign": {"image": ["checkerboard"]}})
    with pytest.raises(ValueError, match="both trained on and held out"):
        check(augment=[{"modality": "image", "kinds": ["jpeg+blur"]}], held_out={"degradations": {"image": ["blur"]}})
    with pytest.raises(ValueError, match="unknown image foreign family"):
        check(outliers={"probability": 0.2, "families": {"image": ["tone"]}})
    with pytest.raises(ValueError, match="held out for evaluation"):
        check(augment=[{"modality": "audio", "kinds": ["hum"]}])
    with pytest.raises(ValueError, match=r"training.energy_bound.*unknown entries \['wieght'\]"):
        check(energy_bound={"wieght": 1})


def test_graded_floor_asks_less_confidence_of_more_damaged_inputs_by_hand():
    # m_in -11, m_out -3, L = 8: floor(l) = -11 + 8 * l / 8 = -11 + l
    energies = {"image": torch.tensor([-12.0, -12.0, -12.0, -1.0])}
    foreign = {"image": torch.tensor([False, False, False, False])}
    levels = {"image": torch.tensor([0.0, 2.0, 6.0, 9.0])}
    bound = EnergyBound.from_dict({"weight": 1.0, "m_in": -11.0, "m_out": -3.0, "degraded_out_level": 8.0})
    assert outlier_loss(energies, foreign, levels, bound).item() == pytest.approx(0.0)  # clean fine, level 9 above m_out
    bound.graded = True
    # level 2: floor -9, E -12 -> 9; level 6: floor -5 -> 49; mean over the two mid-level inputs
    assert outlier_loss(energies, foreign, levels, bound).item() == pytest.approx((9.0 + 49.0) / 2)
    with pytest.raises(ValueError, match="degraded_out_level"):
        EnergyBound.from_dict({"weight": 0.1, "graded": True})


def test_flat_term_pulls_a_foreign_branch_towards_no_class():
    z = torch.tensor([[4.0, 0.0, 0.0], [1.0, 1.0, 1.0]], requires_grad=True)
    energies = {"audio": -torch.logsumexp(z, dim=1)}
    foreign = {"audio": torch.tensor([True, False])}
    levels = {"audio": torch.tensor([0.0, 0.0])}
    bound = EnergyBound.from_dict({"weight": 0.0, "flat_weight": 1.0})
    loss = outlier_loss(energies, foreign, levels, bound, {"audio": z})
    # cross-entropy to uniform of the foreign row only: logsumexp(z) - mean(z)
    expected = float(torch.logsumexp(z[0].detach(), 0) - z[0].detach().mean())
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert z.grad[0, 0] > 0 > z.grad[0, 1]  # descending lowers the winning class, raises the others
    assert torch.all(z.grad[1] == 0)  # the clean row is untouched


def test_family_weights_change_how_often_a_family_is_drawn_and_bad_weights_are_refused():
    from app.qmf.outlier_exposure import OutlierSettings

    fams = {"audio": ["tone", "shuffled_speech"]}
    plain = OutlierSettings(probability=1.0, families=fams)
    weighted = OutlierSettings.from_dict({"probability": 1.0, "families": fams,
                                          "weights": {"audio": {"shuffled_speech": 4.0}}})
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    draws_plain = [plain.draw_family("audio", rng_a) for _ in range(4000)]
    draws_weighted = [weighted.draw_family("audio", rng_b) for _ in range(4000)]
    assert 0.45 < draws_plain.count("shuffled_speech") / 4000 < 0.55
    assert 0.75 < draws_weighted.count("shuffled_speech") / 4000 < 0.85  # 4 / (4 + 1)
    # a recipe without weights draws exactly as before weights existed (same generator calls)
    rng_c = np.random.default_rng(0)
    assert draws_plain[:50] == [fams["audio"][int(rng_c.integers(2))] for _ in range(50)]
    for bad, says in (({"image": {"tone": 2.0}}, "no families"), ({"audio": {"hum": 2.0}}, "not one of its families"),
                      ({"audio": {"tone": 0}}, "weight > 0"), ({"audio": {"tone": True}}, "weight > 0")):
        with pytest.raises(ValueError, match=says):
            OutlierSettings(probability=1.0, families=fams, weights=bad)


def test_family_weights_survive_the_recipe_round_trip_a_bundle_stores():
    from app.qmf.recipe import Recipe

    data = Recipe.from_file("recipes/avmnist-qmf.toml").to_dict()
    data["training"]["outliers"]["weights"] = {"audio": {"shuffled_speech": 3.0}, "image": {"symbols": 2}}
    again = Recipe.from_dict(Recipe.from_dict(data).to_dict())
    assert again.training.outliers.weights == {"audio": {"shuffled_speech": 3.0}, "image": {"symbols": 2.0}}
    data["training"]["outliers"]["weights"] = {"audio": {"reversed_speech": 3.0}}  # held out, not trained on
    with pytest.raises(ValueError, match="not one of its families"):
        Recipe.from_dict(data)


def test_a_pooled_family_needs_a_folder_and_draws_its_recordings_from_it(tmp_path):
    import soundfile as sf

    from app.modalities import get_modality
    from app.qmf.dataset import EpochView
    from app.qmf.outlier_exposure import OutlierSettings, load_pools, pick_foreign

    fams = {"audio": ["tone", "spoken_words"]}
    with pytest.raises(ValueError, match=r"pools\.audio\.spoken_words"):  # the recipe says where it is missing
        OutlierSettings(probability=1.0, families=fams)
    for bad, says in (({"audio": {"tone": "x"}}, "takes no pool"), ({"image": {"spoken_words": "x"}}, "no families"),
                      ({"audio": {"spoken_words": ""}}, "folder path")):
        with pytest.raises(ValueError, match=says):
            OutlierSettings(probability=1.0, families=fams, pools={"audio": {"spoken_words": "w"}, **bad})
    audio = get_modality("audio", {"sample_rate": 8000, "duration": 1.0})
    settings = OutlierSettings(probability=1.0, families=fams, pools={"audio": {"spoken_words": str(tmp_path / "words")}})
    from app.util.errors import UserError

    with pytest.raises(UserError, match="make_word_recordings"):  # no folder yet: one line on how to make one
        load_pools(settings, {"audio": audio})
    (tmp_path / "words").mkdir()
    t = np.arange(4000) / 8000
    for i, f in enumerate((300.0, 700.0)):
        sf.write(tmp_path / "words" / f"w{i}.wav", 0.5 * np.sin(2 * np.pi * f * t), 8000, subtype="PCM_16")
    pools = load_pools(settings, {"audio": audio})
    assert [x.shape for x in pools[("audio", "spoken_words")]] == [(4000,), (4000,)]

    class Data:  # what EpochView reads of the training data for a source
        items = {"audio": [np.zeros(8000, np.float32)]}

    Data.pools = pools
    view = EpochView(Data(), np.arange(1), None, 0, True)
    rng = np.random.default_rng(0)
    sources = {fam: [view._source("audio", fam, rng) for _ in range(20)] for fam in ("spoken_words", "shuffled_speech")}
    assert all(s.shape == (4000,) for s in sources["spoken_words"])  # always one of the pool's recordings
    assert all(s.shape == (8000,) and not s.any() for s in sources["shuffled_speech"])  # the modality's own inputs
    Data.pools = {}  # pools not loaded: a real input passed off as a foreign word would be wrong, so it refuses
    with pytest.raises(ValueError, match="no recordings loaded"):
        view._source("audio", "spoken_words", rng)

    asked = []
    for _ in range(30):
        pick_foreign(settings, {"audio": audio}, rng, lambda name, fam, r: asked.append(fam) or pools[(name, fam)][0])
    assert asked and set(asked) == {"spoken_words"}  # only a family that needs a source asks for one
