#!/usr/bin/env python3
"""Single-op int16 models and their golden outputs from TFLite Micro's reference kernels.

The shared models have no int16 activations, so these cover TFLM's int16 kernels: SOFTMAX (LUT
based), ADD, MUL, LOGISTIC, TANH and DEQUANTIZE. Each model is built here from the schema (pip package
`tflite`), fed seeded random int16 input, and run by the TFLite Micro interpreter (pip package
`tflite-micro`).

Needs: pip install tflite tflite-micro numpy flatbuffers
Run:   python3 make_int16.py        (writes NAME.tflite, NAME.input_<k>.bin, NAME.output.bin here)
"""
import os
import flatbuffers
import numpy as np
import tflite
from tflite_micro.python.tflite_micro import runtime

HERE = os.path.dirname(os.path.abspath(__file__))
INT16 = tflite.TensorType.INT16


def vector(builder, start, values, prepend):
    start(builder, len(values))
    for v in reversed(values):
        prepend(v)
    return builder.EndVector()


def tensor(b, name, shape, scale, zero_point):
    """An int16 tensor with per-tensor quantization, or a float32 one when `scale` is None."""
    n = b.CreateString(name)
    sh = vector(b, tflite.TensorStartShapeVector, shape, b.PrependInt32)
    q = None
    if scale is not None:
        sc = vector(b, tflite.QuantizationParametersStartScaleVector, [scale], b.PrependFloat32)
        zp = vector(b, tflite.QuantizationParametersStartZeroPointVector, [zero_point], b.PrependInt64)
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, sc)
        tflite.QuantizationParametersAddZeroPoint(b, zp)
        q = tflite.QuantizationParametersEnd(b)
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, sh)
    tflite.TensorAddType(b, INT16 if scale is not None else tflite.TensorType.FLOAT32)
    tflite.TensorAddBuffer(b, 0)
    tflite.TensorAddName(b, n)
    if q is not None:
        tflite.TensorAddQuantization(b, q)
    return tflite.TensorEnd(b)


def model(op_code, options_type, options, inputs, output):
    """A model of one op over graph inputs `inputs` [(name, shape, scale, zp)] and `output`."""
    b = flatbuffers.Builder(1024)
    tensors = [tensor(b, *t) for t in inputs + [output]]
    n_in = len(inputs)
    ins = vector(b, tflite.OperatorStartInputsVector, list(range(n_in)), b.PrependInt32)
    outs = vector(b, tflite.OperatorStartOutputsVector, [n_in], b.PrependInt32)
    opts = options(b) if options else None
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, ins)
    tflite.OperatorAddOutputs(b, outs)
    if opts is not None:
        tflite.OperatorAddBuiltinOptionsType(b, options_type)
        tflite.OperatorAddBuiltinOptions(b, opts)
    op = tflite.OperatorEnd(b)
    ts = vector(b, tflite.SubGraphStartTensorsVector, tensors, b.PrependUOffsetTRelative)
    si = vector(b, tflite.SubGraphStartInputsVector, list(range(n_in)), b.PrependInt32)
    so = vector(b, tflite.SubGraphStartOutputsVector, [n_in], b.PrependInt32)
    ops = vector(b, tflite.SubGraphStartOperatorsVector, [op], b.PrependUOffsetTRelative)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, ts)
    tflite.SubGraphAddInputs(b, si)
    tflite.SubGraphAddOutputs(b, so)
    tflite.SubGraphAddOperators(b, ops)
    sg = tflite.SubGraphEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, op_code)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(op_code, 127))
    tflite.OperatorCodeAddVersion(b, 1)
    code = tflite.OperatorCodeEnd(b)
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    codes = vector(b, tflite.ModelStartOperatorCodesVector, [code], b.PrependUOffsetTRelative)
    sgs = vector(b, tflite.ModelStartSubgraphsVector, [sg], b.PrependUOffsetTRelative)
    bufs = vector(b, tflite.ModelStartBuffersVector, [empty], b.PrependUOffsetTRelative)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, sgs)
    tflite.ModelAddBuffers(b, bufs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def softmax_options(beta):
    def build(b):
        tflite.SoftmaxOptionsStart(b)
        tflite.SoftmaxOptionsAddBeta(b, beta)
        return tflite.SoftmaxOptionsEnd(b)
    return build


def no_activation(start, end):
    def build(b):
        start(b)
        return end(b)
    return build


CASES = {
    "softmax_int16": (tflite.BuiltinOperator.SOFTMAX, tflite.BuiltinOptions.SoftmaxOptions, softmax_options(1.0),
                      [("x", [3, 40], 0.0004, 0)], ("y", [3, 40], 1.0 / 32768, 0)),
    "softmax_int16_beta": (tflite.BuiltinOperator.SOFTMAX, tflite.BuiltinOptions.SoftmaxOptions, softmax_options(0.7),
                           [("x", [2, 7], 0.00013, 0)], ("y", [2, 7], 1.0 / 32768, 0)),
    "add_int16": (tflite.BuiltinOperator.ADD, tflite.BuiltinOptions.AddOptions,
                  no_activation(tflite.AddOptionsStart, tflite.AddOptionsEnd),
                  [("a", [2, 50], 0.0011, 0), ("b", [2, 50], 0.0007, 0)], ("y", [2, 50], 0.0015, 0)),
    "mul_int16": (tflite.BuiltinOperator.MUL, tflite.BuiltinOptions.MulOptions,
                  no_activation(tflite.MulOptionsStart, tflite.MulOptionsEnd),
                  [("a", [2, 50], 0.0011, 0), ("b", [2, 50], 0.0007, 0)], ("y", [2, 50], 0.00002, 0)),
    # LOGISTIC and TANH: TFLite's power-of-two input scales and general ones.
    "logistic_int16_pot": (tflite.BuiltinOperator.LOGISTIC, None, None,
                           [("x", [4, 64], 1.0 / 4096, 0)], ("y", [4, 64], 1.0 / 32768, 0)),
    "logistic_int16": (tflite.BuiltinOperator.LOGISTIC, None, None,
                       [("x", [4, 64], 0.0004, 0)], ("y", [4, 64], 1.0 / 32768, 0)),
    "tanh_int16_pot": (tflite.BuiltinOperator.TANH, None, None,
                       [("x", [4, 64], 1.0 / 2048, 0)], ("y", [4, 64], 1.0 / 32768, 0)),
    "tanh_int16": (tflite.BuiltinOperator.TANH, None, None,
                   [("x", [4, 64], 0.00071, 0)], ("y", [4, 64], 1.0 / 32768, 0)),
    "dequantize_int16": (tflite.BuiltinOperator.DEQUANTIZE, None, None,
                         [("x", [4, 64], 0.0007133, -7)], ("y", [4, 64], None, 0)),
}


def main():
    for name, (code, opt_type, options, inputs, output) in CASES.items():
        data = model(code, opt_type, options, inputs, output)
        path = os.path.join(HERE, name + ".tflite")
        with open(path, "wb") as f:
            f.write(data)
        rng = np.random.default_rng(2024)
        interp = runtime.Interpreter.from_file(path, arena_size=1 << 20)
        for k, (_, shape, _, _) in enumerate(inputs):
            x = rng.integers(-32768, 32768, size=shape, dtype=np.int16)
            x.tofile(os.path.join(HERE, f"{name}.input_{k}.bin"))
            interp.set_input(x, k)
        interp.invoke()
        interp.get_output(0).tofile(os.path.join(HERE, name + ".output.bin"))
        print("wrote", name)


if __name__ == "__main__":
    main()
