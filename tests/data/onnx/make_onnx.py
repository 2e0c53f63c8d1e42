#!/usr/bin/env python3
"""Convert the shared TFLite models to ONNX (QDQ form) for minnow's ONNX end-to-end tests.

Needs: pip install tf2onnx==1.17.0 tensorflow-cpu onnx
Run:   python3 make_onnx.py [SHARED_MODELS_DIR]     (default: ../../../../shared/models)

tf2onnx writes a dynamic batch dimension; minnow needs static shapes, so it is fixed to 1.
The golden vectors of the TFLite models (shared/models/golden) are the expected outputs.
"""
import os, subprocess, sys, tempfile
import onnx

# micro_speech is left out: tf2onnx 1.17 drops its fully connected layer's bias, so the
# converted model is not the same model (its outputs differ from the golden ones).
MODELS = ["kws", "vww", "resnet8", "ad01", "hello_world"]

def main(src):
    out = os.path.dirname(os.path.abspath(__file__))
    for name in MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, name + ".onnx")
            subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", os.path.join(src, name + ".tflite"),
                            "--output", raw, "--opset", "17"], check=True, capture_output=True)
            model = onnx.load(raw)
        for v in list(model.graph.input) + list(model.graph.output):
            for d in v.type.tensor_type.shape.dim:
                if d.HasField("dim_param"):
                    d.ClearField("dim_param")
                    d.dim_value = 1
        onnx.save(model, os.path.join(out, name + ".onnx"))
        print(name, "written")

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../../shared/models"))
