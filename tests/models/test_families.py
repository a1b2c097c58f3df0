"""The textbook's four families (VideoMAE, TimeSformer, SlowFast, I3D) through the seams every model
uses: reference, train, evaluate, checkpoint, tag flow, OpenVINO. Everything tiny, nothing downloaded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tiny import TINY_TRANSFORMER, tiny_kwargs

from actionrec.errors import CheckpointError, ConfigError, ModelError, WeightsNotFoundError
from actionrec.io.uris import local_path
from actionrec.models import build_model, load_model, parse_model_ref, pin_model, save_checkpoint
from actionrec.models.weights import weights_cache_path

CLASSES = ["a", "b", "c"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _save_pretrained(folder, model_type: str, labels=("x", "y"), processor: dict | None = None):
    """A tiny transformers video classifier as ``save_pretrained`` writes it."""
    import transformers

    torch.manual_seed(0)
    cfg_class, model_class = {"videomae": ("VideoMAEConfig", "VideoMAEForVideoClassification"),
                              "timesformer": ("TimesformerConfig", "TimesformerForVideoClassification")}[model_type]
    extra = {"tubelet_size": 2} if model_type == "videomae" else {}
    cfg = getattr(transformers, cfg_class)(**TINY_TRANSFORMER, **extra, id2label=dict(enumerate(labels)),
                                           label2id={x: i for i, x in enumerate(labels)})
    getattr(transformers, model_class)(cfg).save_pretrained(folder)
    if processor is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return folder


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {"videomae": _save_pretrained(root / "tiny-videomae", "videomae"),
            "timesformer": _save_pretrained(root / "tiny-timesformer", "timesformer", processor={
                "size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32}, "do_rescale": True,
                "rescale_factor": 1 / 255, "image_mean": [0.45, 0.45, 0.45], "image_std": [0.225, 0.225, 0.225]})}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from actionrec.data.labels import read_labels
    from actionrec.data.synth import SynthConfig, write_dataset

    return read_labels(write_dataset(tmp_path_factory.mktemp("synth"),
                                     SynthConfig(per_class=1, seed=2, size=32, num_frames=16, fps=16)))


# -- references ------------------------------------------------------------------------------------
def test_hf_references_folder_or_hub_id(hf_folders, tmp_path, monkeypatch):
    folder = hf_folders["videomae"]
    r = parse_model_ref(f"hf:{folder}")
    assert (r.kind, r.location, r.name) == ("hf", str(folder), "tiny-videomae")
    monkeypatch.chdir(folder.parent)
    assert parse_model_ref("hf:tiny-videomae").location == str(folder)  # an existing folder wins
    r = parse_model_ref("hf:MCG-NJU/videomae-base-finetuned-kinetics")
    assert (r.kind, r.location, r.name) == ("hf", "", "MCG-NJU/videomae-base-finetuned-kinetics")
    for bad in ("hf:", "hf:a/b/c", "hf:org/..", "hf:has space"):
        with pytest.raises(ConfigError):
            parse_model_ref(bad)
    for text, kind, name, version in [("pytorchvideo:slowfast_r50", "pytorchvideo", "slowfast_r50", None),
                                      ("pytorchvideo:i3d_r50:I3D_8x8_R50", "pytorchvideo", "i3d_r50", "I3D_8x8_R50"),
                                      ("torchvision:r3d_18", "torchvision", "r3d_18", "KINETICS400_V1")]:
        r = parse_model_ref(text)
        assert (r.kind, r.name, r.version) == (kind, name, version)
    assert pin_model("pytorchvideo:slowfast_r50").version == "SLOWFAST_8x8_R50"
    with pytest.raises(ModelError, match="use pytorchvideo:slowfast_r50"):
        load_model("torchvision:slowfast_r50")


def test_a_hub_id_loads_from_the_local_cache_only(hf_folders, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFoundError, match="`actionrec models pull hf:org/tiny-videomae`"):
        pin_model("hf:org/tiny-videomae")
    # The cache's layout: refs/main names the commit, snapshots/<commit> holds its files.
    repo = tmp_path / "hub" / "models--org--tiny-videomae"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    shutil.copytree(hf_folders["videomae"], repo / "snapshots" / COMMIT)
    pinned = pin_model("hf:org/tiny-videomae")
    assert (pinned.name, pinned.version) == ("hf-org--tiny-videomae", COMMIT[:12])
    model = load_model(pinned)
    assert (model.arch, model.classes, model.version) == ("videomae", ["x", "y"], COMMIT[:12])


def test_a_folder_version_follows_its_content(hf_folders, tmp_path):
    folder = shutil.copytree(hf_folders["videomae"], tmp_path / "copy")
    first = pin_model(f"hf:{folder}")
    assert first.name == "hf-copy" and load_model(first).version == first.version
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "id2label": {"0": "p", "1": "q"}}))
    assert pin_model(f"hf:{folder}").version != first.version
    with pytest.raises(ModelError, match="changed since the run started"):
        load_model(first)


def test_the_input_spec_is_the_models_own(hf_folders):
    """Frames and size from config.json, short side and normalisation from the processor file; without
    one, the family processor's defaults (VideoMAE: ImageNet's mean and std, short side = crop)."""
    vm = load_model(f"hf:{hf_folders['videomae']}")
    assert (vm.spec.frames_per_clip, vm.spec.crop_size, vm.spec.short_side) == (4, 32, 32)
    assert vm.spec.mean == (0.485, 0.456, 0.406) and vm.spec.sample_fps == 7.5
    ts = load_model(f"hf:{hf_folders['timesformer']}")
    assert (ts.spec.frames_per_clip, ts.spec.crop_size, ts.spec.short_side) == (4, 32, 40)
    assert ts.spec.mean == pytest.approx((0.45,) * 3) and ts.spec.std == pytest.approx((0.225,) * 3)
    # ViViT's processor maps pixels to [-1, 1] and then normalises with 0.5 / 0.5: one affine map.
    from actionrec.models.hf import FAMILIES, processor_spec

    vivit = processor_spec(FAMILIES["vivit"], {}, 32, 224)
    pixels = torch.tensor([0.0, 100.0, 255.0])
    hf_way = ((pixels / 127.5 - 1) - 0.5) / 0.5
    assert torch.allclose((pixels / 255 - vivit.mean[0]) / vivit.std[0], hf_way, atol=1e-5)


@pytest.mark.parametrize("change,match", [
    ({"hidden_size": 10**9}, "hidden_size must be integers"),
    ({"num_hidden_layers": 10**6}, "num_hidden_layers"),
    ({"image_size": 1024, "patch_size": 1, "num_frames": 512}, "patches"),
    ({"trust_remote_code": True}, "unknown fields"),
    ({"hidden_act": {"nested": ["x"]}}, "plain value"),
    ({"hidden_size": "32"}, "hidden_size must be integers"),
    ({"hidden_size": 8192, "intermediate_size": 32768, "num_attention_heads": 64, "num_hidden_layers": 90},
     "parameter network"),
])
def test_a_hostile_transformers_config_is_refused_before_allocation(hf_folders, tmp_path, change, match):
    path = tmp_path / "model.pt"
    save_checkpoint(load_model(f"hf:{hf_folders['videomae']}"), path)
    payload = torch.load(path, weights_only=True)
    payload["arch_kwargs"]["config"].update(change)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=match):
        load_model(str(path))


@pytest.mark.parametrize("arch,package", [("slowfast_r50", "pytorchvideo"), ("i3d_r50", "pytorchvideo"),
                                          ("videomae", "transformers")])
def test_a_plain_install_names_the_extra(arch, package, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(ConfigError, match=r"actionrec\[families\]"):
        build_model(arch, CLASSES, **tiny_kwargs(arch))


# -- SlowFast and I3D ------------------------------------------------------------------------------
def test_slowfast_takes_one_clip_and_derives_its_slow_pathway():
    net = build_model("slowfast_r50", CLASSES, **tiny_kwargs("slowfast_r50")).module.eval()
    clip = torch.arange(8.0).reshape(1, 1, 8, 1, 1).expand(1, 3, 8, 32, 32)  # frame t holds the value t
    slow, fast = net.pathways(clip)
    assert slow[0, 0, :, 0, 0].tolist() == [0.0, 4.0]  # frames 0, alpha, 2 alpha, ...
    assert torch.equal(fast, clip)
    with torch.inference_mode():
        assert net(torch.randn(2, 3, 8, 32, 32)).shape == (2, 3)


def test_zoo_weights_load_from_the_local_torch_cache(tmp_path, monkeypatch):
    """pytorchvideo's .pyth holds the state dict under "model_state"; its keys are pytorchvideo's own."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from actionrec.models.architectures import get_architecture

    url = get_architecture("i3d_r50").urls["I3D_8x8_R50"]
    assert url == "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/I3D_8x8_R50.pyth"
    with pytest.raises(WeightsNotFoundError, match="I3D_8x8_R50.pyth"):
        load_model("pytorchvideo:i3d_r50")
    from pytorchvideo.models.hub.resnet import i3d_r50

    torch.manual_seed(3)
    reference = i3d_r50(pretrained=False)  # pytorchvideo's own model: the zoo's keys and shapes
    path = weights_cache_path(url)
    path.parent.mkdir(parents=True)
    torch.save({"model_state": reference.state_dict(), "epoch": 196}, path)
    model = load_model("pytorchvideo:i3d_r50")
    assert (model.name, model.version, len(model.classes)) == ("pytorchvideo-i3d_r50", "I3D_8x8_R50", 400)
    assert model.classes[0] == "abseiling" and model.spec.crop_size == 256 and model.spec.frames_per_clip == 8
    x = torch.randn(1, 3, 8, 224, 224)
    with torch.inference_mode():
        assert torch.allclose(model.module(x), reference.eval()(x), atol=1e-5)  # same numbers at 224
    small = build_model("i3d_r50", CLASSES, pretrained="I3D_8x8_R50").module
    assert small.blocks[6].proj.out_features == 3
    assert torch.equal(small.blocks[0].conv.weight, reference.blocks[0].conv.weight)


# -- every family, end to end ----------------------------------------------------------------------
@pytest.mark.parametrize("family", ["videomae", "timesformer", "slowfast_r50", "i3d_r50"])
def test_every_family_trains_evaluates_tags_and_converts(family, hf_folders, synth, prefect_api, tmp_path):
    from actionrec.engines.choice import EngineChoice
    from actionrec.engines.runners import open_runner
    from actionrec.engines.torch_runner import TorchRunner
    from actionrec.evaluation.evaluate import evaluate_model
    from actionrec.training.config import TrainConfig
    from actionrec.training.loop import train
    from flows.tag import tag_flow

    small = {"short_side": 32, "crop_size": 32, "sample_fps": 8.0}
    if family in hf_folders:  # fine-tune the loaded transformers model: a new head for the synthetic classes
        init = load_model(f"hf:{hf_folders[family]}")
        cfg = TrainConfig(epochs=1, batch_size=4, seed=0, spec_overrides={"sample_fps": 8.0})
    else:
        init = None
        cfg = TrainConfig(arch=family, epochs=1, batch_size=4, seed=0, arch_kwargs=tiny_kwargs(family),
                          spec_overrides={**small, "frames_per_clip": 8})
    out = tmp_path / "m" / "model.pt"
    result = train(cfg, synth, init=init, out=out, progress=False, model_name=f"fam-{family}")
    assert len(result.history) == 1 and np.isfinite(result.history[0].train_loss)
    model = load_model(str(out))  # an ordinary actionrec checkpoint, whatever the family
    assert model.arch == family and model.classes == list(synth.classes)
    clips = np.random.default_rng(0).integers(0, 256, (2, model.spec.frames_per_clip, 32, 32, 3), dtype=np.uint8)
    expected = TorchRunner(result.model, EngineChoice("torch", "f32", "cpu"), batch_size=2).run(clips)
    assert np.allclose(TorchRunner(model, EngineChoice("torch", "f32", "cpu"), batch_size=2).run(clips), expected,
                       atol=1e-5)

    ev = evaluate_model(model, list(synth.rows), clips=1, decode_backend="thread", engine="torch")
    assert 0.0 <= ev.result.top1 <= 1.0 and not ev.failed

    # Converted once (export.cached_openvino, ~10 s for SlowFast on 2 cores): the tag run below reuses it.
    got = open_runner(model, EngineChoice("openvino", "f32", "cpu")).run(clips)
    assert np.abs(got - expected).max() < 1e-4 and (got.argmax(1) == expected.argmax(1)).all()

    videos = tmp_path / "videos"
    videos.mkdir()
    for row in synth.rows[:3]:
        shutil.copy(local_path(row.uri), videos)
    lake = str(tmp_path / "lake")
    row = tag_flow(source=str(videos), lake=lake, model=str(out.parent), clips=1, decode_backend="thread")
    assert (row["model_name"], row["ok"]) == (f"fam-{family}", 3)
    if family in hf_folders:
        # An hf: reference's pinned identity (hf-<folder>, a content hash) is the skip set's key.
        ref = f"hf:{hf_folders[family]}"
        first = tag_flow(source=str(videos), lake=lake, model=ref, clips=1, decode_backend="thread")
        again = tag_flow(source=str(videos), lake=lake, model=ref, clips=1, decode_backend="thread")
        assert (first["model_name"], first["model_version"]) == (f"hf-tiny-{family}", pin_model(ref).version)
        assert (first["ok"], again["ok"], again["videos_skipped"]) == (3, 0, 3)
