#!/usr/bin/env python3
"""Writes a stand-in Piper voice into a folder: `standin.onnx`, an ONNX model with Piper's
inputs (`input` phoneme ids [1, n], `input_lengths` [1], `scales` [3]) and output
(`output` [1, 1, samples] of float audio at 22050 Hz): a 400 Hz tone, 256 samples per id,
and `standin.onnx.json` with an IPA phoneme map as Piper voices carry.

It exists to test Switchboard's Piper plumbing (espeak-ng phonemes, ids, ONNX Runtime,
resampling to the phone) on machines where no real voice can be downloaded. It speaks no
words. Usage: make-piper-standin.py <folder> (needs the `onnx` package).
"""
import json
import math
import os
import sys

import onnx
from onnx import TensorProto, helper

SAMPLES_PER_ID = 256
RATE = 22050
# Piper's framing symbols, then the IPA letters, stress and length marks espeak-ng writes.
SYMBOLS = "_^$ !'(),-.:;?" + "abcdefhijklmnopqrstuvwxyz" + "ɐɑɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘̩ᵻ"


def main(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    const = lambda name, kind, dims, vals: helper.make_tensor(name, kind, dims, vals)
    nodes = [
        helper.make_node("Cast", ["input"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["x", "axis2"], ["x3"]),
        helper.make_node("Tile", ["x3", "repeats"], ["tiled"]),
        helper.make_node("Reshape", ["tiled", "shape"], ["flat"]),
        helper.make_node("Mul", ["flat", "zero"], ["z"]),
        helper.make_node("Add", ["z", "one"], ["ones"]),
        helper.make_node("CumSum", ["ones", "last"], ["index"]),
        helper.make_node("Mul", ["index", "omega"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "amp"], ["output"]),
    ]
    inits = [
        const("axis2", TensorProto.INT64, [1], [2]),
        const("repeats", TensorProto.INT64, [3], [1, 1, SAMPLES_PER_ID]),
        const("shape", TensorProto.INT64, [3], [1, 1, -1]),
        const("zero", TensorProto.FLOAT, [], [0.0]),
        const("one", TensorProto.FLOAT, [], [1.0]),
        const("last", TensorProto.INT64, [], [2]),
        const("omega", TensorProto.FLOAT, [], [2 * math.pi * 400 / RATE]),
        const("amp", TensorProto.FLOAT, [], [0.3]),
    ]
    graph = helper.make_graph(
        nodes,
        "piper-standin",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, "n"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "samples"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(folder, "standin.onnx"))
    ids = {c: [i] for i, c in enumerate(dict.fromkeys(SYMBOLS))}
    config = {
        "audio": {"sample_rate": RATE, "quality": "standin"},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "num_symbols": len(ids),
        "num_speakers": 1,
        "phoneme_id_map": ids,
    }
    with open(os.path.join(folder, "standin.onnx.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1])
