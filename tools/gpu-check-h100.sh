#!/bin/sh
# The h100 (sm_90) TVM CUDA artifact's numerics against ONNX Runtime, on a GPU machine without TVM,
# TensorRT or internet, with at most 64 MiB brought to it (issue 14, GPU part). UNCHECKED: written
# without a GPU machine; never run yet.
#
#   tools/gpu-check-h100.sh prepare   # here: build/gpu-check/ = artifact, inputs, ORT outputs, runtime-only TVM
#   tools/gpu-check-h100.sh run       # there (Python 3.12, CUDA): run the artifact on the GPU, compare
#
# What travels: the artifact (model.so with its CUDA source), x.npy, ref.npy, TVM's Python package
# without libtvm_compiler.so and 3rdparty/ (TVM_USE_RUNTIME_LIB=1 loads libtvm_runtime.so only),
# and apache-tvm-ffi 0.1.14.post1 for cp312, unpacked.
set -eu
OUT=build/gpu-check
case "${1:-}" in
prepare)
  rm -rf "$OUT" && mkdir -p "$OUT/site"
  .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); import onnx; from helpers import make_model, CONV_BN_RELU, CONV_BN_RELU_WEIGHTS; onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=('v',)), '$OUT/net.onnx')"
  .venv/bin/deploycc build "$OUT/net.onnx" --target h100 -o "$OUT/net.h100" || [ $? -eq 3 ]   # not verified here: no GPU
  .venv/bin/python -c "import numpy as np, onnxruntime as ort; x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype('float32'); np.save('$OUT/x.npy', x); np.save('$OUT/ref.npy', ort.InferenceSession('$OUT/net.onnx').run(None, {'image': x})[0])"
  TVM=$(.venv/bin/python -c "import tvm, os; print(os.path.dirname(tvm.__file__))")
  (cd "$TVM/.." && tar cf - --exclude=libtvm_compiler.so --exclude=3rdparty --exclude=__pycache__ tvm) | tar xf - -C "$OUT/site"
  .venv/bin/python -m pip download -q apache-tvm-ffi==0.1.14.post1 --no-deps --only-binary=:all: \
    --python-version 3.12 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$OUT/wheel"
  python3 -m zipfile -e "$OUT"/wheel/*.whl "$OUT/site" && rm -rf "$OUT/wheel"
  du -sh "$OUT" ;;
run)
  TVM_USE_RUNTIME_LIB=1 PYTHONPATH="$OUT/site" python3 - "$OUT" <<'PY'
import sys, numpy as np, tvm
from tvm.runtime.vm import VirtualMachine
out = sys.argv[1]
vm = VirtualMachine(tvm.runtime.load_module(f"{out}/net.h100/model.so"), tvm.cuda())
got = vm["main"](tvm.runtime.tensor(np.load(f"{out}/x.npy"), tvm.cuda()))
got = (got if hasattr(got, "numpy") else got[0]).numpy()
ref = np.load(f"{out}/ref.npy")
err = float(np.abs(got - ref).max()); allowed = 1e-4 * float(np.abs(ref).max())
print(f"h100 TVM CUDA vs ONNX Runtime: max abs {err:.3g} (allowed {allowed:.3g}) on {tvm.cuda().device_name}")
sys.exit(0 if err <= allowed else 1)
PY
  ;;
*) echo "usage: $0 prepare|run"; exit 2 ;;
esac
