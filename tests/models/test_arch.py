"""Architecture file format: round trips and one clear UserError per mistake."""

from __future__ import annotations

import json

import pytest

from deploycc.core.errors import UserError
from deploycc.models import load_arch, parse_arch, resolve_arch, save_arch, zoo_names, zoo_path

ZOO = ["fbnet_a", "lat_large", "lat_small", "lat_xlarge", "mac_large", "mac_small", "mac_xlarge", "squeezenet1_1"]


def test_zoo_names():
    assert zoo_names() == ZOO


@pytest.mark.parametrize("name", ZOO)
def test_zoo_round_trip(name, tmp_path):
    arch = resolve_arch(name)
    assert arch.name == name
    out = save_arch(arch, tmp_path / "a.json")
    again = load_arch(out)
    assert again == arch and again.to_dict() == arch.to_dict()
    assert resolve_arch(str(out)) == arch


def test_defaults_filled_in():
    arch = parse_arch(
        {
            "format": "deploycc-arch",
            "version": 1,
            "name": "x",
            "space": "squeezenas",
            "backbone": "small",
            "genotype": ["skip"] * 20,
        }
    )
    assert arch.head == "lraspp" and arch.num_classes == 19
    assert arch.input_shape == (1, 3, 1024, 2048)
    assert arch.preprocessing.mean == (0.485, 0.456, 0.406)
    sq = parse_arch({"format": "deploycc-arch", "version": 1, "name": "s", "space": "squeezenet"})
    assert sq.num_classes == 1000 and sq.input_shape == (1, 3, 224, 224)


def _err(d, *needles, source="bad.json"):
    with pytest.raises(UserError) as e:
        parse_arch(d, source=source)
    msg = str(e.value)
    assert "\n" not in msg and source in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_not_json(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(UserError, match=r"broken\.json: not valid JSON"):
        load_arch(p)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_arch(tmp_path / "nope.json")


def test_not_an_object():
    _err([1, 2], "JSON object")


def test_wrong_format(zoo_dict):
    d = zoo_dict("mac_small") | {"format": "onnx"}
    _err(d, "'format'", "deploycc-arch")


def test_wrong_version(zoo_dict):
    _err(zoo_dict("mac_small") | {"version": 2}, "'version'", "unsupported version 2")


def test_unknown_space(zoo_dict):
    _err(zoo_dict("mac_small") | {"space": "mnasnet"}, "'space'", "mnasnet", "squeezenas")


def test_unknown_backbone(zoo_dict):
    _err(zoo_dict("mac_small") | {"backbone": "huge"}, "'backbone'", "huge", "xlarge")


def test_unknown_head(zoo_dict):
    _err(zoo_dict("mac_small") | {"head": "fcn"}, "'head'", "fcn", "lraspp")


def test_head_backbone_mismatch(zoo_dict):
    _err(zoo_dict("mac_small") | {"head": "aspp"}, "'head'", "small backbone needs the lraspp")


def test_unknown_unit(zoo_dict):
    d = zoo_dict("mac_small")
    d["genotype"][5] = "k7e6"
    _err(d, "'genotype'", "'k7e6'", "index 5", "k3e1g2d2")


def test_fbnet_unit_code_style(zoo_dict):
    d = zoo_dict("fbnet_a")
    d["genotype"][0] = "k3e1"
    _err(d, "'k3e1'", "index 0", "k3_e1_g2")


def test_wrong_layer_count(zoo_dict):
    d = zoo_dict("mac_small")
    d["genotype"] = d["genotype"][:19]
    _err(d, "has 19 units, the small backbone needs 20")
    d = zoo_dict("fbnet_a")
    d["genotype"].append("skip")
    _err(d, "has 23 units, the fbnet space needs 22")


def test_genotype_not_list(zoo_dict):
    _err(zoo_dict("mac_small") | {"genotype": "k3e1 k3e1"}, "'genotype'", "list")


def test_squeezenet_takes_no_genotype(zoo_dict):
    _err(zoo_dict("squeezenet1_1") | {"genotype": ["skip"]}, "'genotype'", "no searchable")


@pytest.mark.parametrize("classes", [0, -3, 2.5, True, "19"])
def test_bad_num_classes(zoo_dict, classes):
    _err(zoo_dict("mac_small") | {"num_classes": classes}, "'num_classes'")


def test_input_shape_not_4d(zoo_dict):
    _err(zoo_dict("mac_small") | {"input_shape": [3, 1024, 2048]}, "'input_shape'", "4 integers")


def test_input_shape_not_positive(zoo_dict):
    _err(zoo_dict("mac_xlarge") | {"input_shape": [0, 3, 256, 512]}, "positive")


def test_input_shape_channels(zoo_dict):
    _err(zoo_dict("mac_xlarge") | {"input_shape": [1, 1, 256, 512]}, "3 (RGB) channels")


def test_input_shape_multiple_of_16(zoo_dict):
    _err(zoo_dict("mac_xlarge") | {"input_shape": [1, 3, 1000, 2048]}, "multiples of 16")


def test_lraspp_needs_784(zoo_dict):
    _err(zoo_dict("mac_small") | {"input_shape": [1, 3, 768, 1536]}, "49x49 pool", "784")
    _err(zoo_dict("mac_small") | {"input_shape": [1, 3, 1024, 512]}, "49x49 pool")
    parse_arch(zoo_dict("mac_small") | {"input_shape": [1, 3, 784, 784]})  # the minimum is fine


def test_fbnet_multiple_of_32(zoo_dict):
    _err(zoo_dict("fbnet_a") | {"input_shape": [1, 3, 240, 240]}, "multiples of 32")


def test_unknown_key(zoo_dict):
    _err(zoo_dict("mac_small") | {"width_mult": 2}, "'width_mult'", "unknown key")


def test_unknown_preprocessing_key(zoo_dict):
    d = zoo_dict("mac_small")
    d["preprocessing"]["gamma"] = 2.2
    _err(d, "preprocessing.gamma")


def test_bad_std(zoo_dict):
    d = zoo_dict("mac_small")
    d["preprocessing"]["std"] = [0.2, 0, 0.2]
    _err(d, "preprocessing.std")


def test_bad_layout(zoo_dict):
    d = zoo_dict("mac_small")
    d["preprocessing"]["layout"] = "NHWC"
    _err(d, "layout", "NHWC")


def test_backbone_on_fbnet(zoo_dict):
    _err(zoo_dict("fbnet_a") | {"backbone": "small"}, "'backbone'", "not used")


def test_missing_name(zoo_dict):
    d = zoo_dict("mac_small")
    del d["name"]
    _err(d, "'name'")


def test_grouped_unit_needs_divisible_channels():
    from deploycc.models.spaces import unit_problem

    assert "divisible" in unit_problem("squeezenas", "k3e1g2", 15, 16, 1)
    assert "even" in unit_problem("squeezenas", "skip", 16, 15, 2)
    assert unit_problem("squeezenas", "k3e1g2", 16, 24, 2) is None


def test_resolve_unknown_lists_zoo():
    with pytest.raises(UserError, match="mac_small"):
        resolve_arch("mac_tiny")


def test_zoo_path_unknown():
    with pytest.raises(UserError, match="unknown zoo architecture"):
        zoo_path("nope")


def test_load_arch_names_the_file(tmp_path, zoo_dict):
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(zoo_dict("mac_small") | {"space": "x"}))
    with pytest.raises(UserError, match=r"mine\.json: field 'space'"):
        load_arch(p)


@pytest.mark.parametrize(
    "name, shape, least, near",
    [
        ("mac_small", [1, 3, 256, 512], "1x3x784x784", "1x3x784x1568"),
        ("lat_small", [1, 3, 784, 1000], "1x3x784x784", "1x3x784x1008"),
        ("mac_xlarge", [1, 3, 100, 200], "1x3x16x16", "1x3x112x208"),
        ("fbnet_a", [2, 3, 100, 100], "2x3x32x32", "2x3x128x128"),
    ],
)
def test_input_shape_option_refusal_says_the_smallest_that_works(name, shape, least, near):
    with pytest.raises(UserError) as err:
        resolve_arch(name).with_input_shape(shape)
    message = str(err.value)
    assert message.startswith(f"{name} needs --input-shape of at least {least} (")
    assert f"--input-shape {near}" in message and "field" not in message and ".json" not in message


def test_input_shape_option_with_wrong_channels():
    with pytest.raises(UserError, match="mac_small needs --input-shape N x 3 x H x W"):
        resolve_arch("mac_small").with_input_shape([1, 4, 1024, 2048])


def test_smallest_suggested_shape_is_accepted():
    for name in ("mac_small", "lat_xlarge", "fbnet_a"):
        arch = resolve_arch(name)
        with pytest.raises(UserError) as err:
            arch.with_input_shape([1, 3, 8, 8])
        least = str(err.value).split("at least ")[1].split(" ")[0]
        arch.with_input_shape([int(v) for v in least.split("x")])  # what the message says works, works


@pytest.mark.parametrize("command", ["export", "build"])
def test_cli_refuses_a_small_input_shape_with_exit_2_and_writes_nothing(command, tmp_path, capsys):
    from helpers import run_cli

    arch_file = save_arch(resolve_arch("lat_small"), tmp_path / "mine.json")
    for model in ("lat_small", arch_file):
        out = tmp_path / f"out-{command}"
        extra = ["--target", "cpu-ort"] if command == "build" else []
        assert run_cli([command, model, *extra, "--input-shape", "1x3x256x512", "-o", out]) == 2
        assert not out.exists()
        assert "lat_small needs --input-shape of at least 1x3x784x784" in capsys.readouterr().err
