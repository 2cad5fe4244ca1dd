#!/usr/bin/env bash
# Device sessions behind benchmarks/RESULTS.md. Run on the device machine from the repo root:
#   bash benchmarks/gpu_session.sh PHASE
# env: versions, doctor, the test suite on the GPU machine; small/table1/table3/final/check/last
# (first session), bounded/bounded2 (second), profile3/speed3/final3/last3/auto3 (third): the
# benchmark runs RESULTS.md cites (reference and ours in the same call where it says so).
# Needs .devcarry/ (ignored, carried): ref/ (a checkout of the reference ProPainter),
# data/bmx-trees, reference/ (the parity kit). Results land in $OUT.
set -u
PHASE=${1:-env}
export PYTHONPATH=$PWD/src PROPAINTER_WIRE_SHARED=$PWD/.devcarry PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=python3
BMX=$PWD/.devcarry/data/bmx-trees
CLIPS=/tmp/clips

bench() {  # name, then bench.py args; one JSON line per run in $OUT/results.jsonl
  local name=$1; shift
  if timeout 300 $PY benchmarks/bench.py --engine propainter --device cuda --source "$BMX" "$@" \
      > /tmp/run.json 2> /tmp/run.err; then
    echo "{\"name\": \"$name\", \"result\": $(tail -n 1 /tmp/run.json)}" >> "$OUT/results.jsonl"
  else
    echo "{\"name\": \"$name\", \"failed\": $(tail -n 1 /tmp/run.err | $PY -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" \
      >> "$OUT/results.jsonl"
  fi
  tail -n 1 "$OUT/results.jsonl" | cut -c1-300
}

reference() {  # name, width, height, frames
  local name=$1 w=$2 h=$3 n=$4
  [ -d "$CLIPS/${w}x${h}x${n}" ] || $PY benchmarks/bench.py --write-clip "$CLIPS/${w}x${h}x${n}" --source "$BMX" \
    --width "$w" --height "$h" --frames "$n"
  timeout 300 $PY benchmarks/reference_driver.py --ref "$PWD/.devcarry/ref" -- -i "$CLIPS/${w}x${h}x${n}/frames" \
    -m "$CLIPS/${w}x${h}x${n}/masks" -o /tmp/ref_out --fp16 --save_frames > /tmp/ref.json 2> /tmp/ref.err
  echo "{\"name\": \"$name\", \"result\": $(tail -n 1 /tmp/ref.json)}" >> "$OUT/results.jsonl"
  tail -n 1 "$OUT/results.jsonl" | cut -c1-300
}

smoke() {  # a short run at 432x240 first: a broken build stops the phase before the long runs
  timeout 120 $PY benchmarks/profile_engine.py --width 432 --height 240 --frames 12 --source "$BMX" | tail -n 1
}

gpu_tests() {  # seconds, then test files: their summary line (the GPU-only tests run here)
  local limit=$1; shift
  timeout "$limit" $PY -m pytest -q -p no:cacheprovider "$@" 2>&1 | grep -E "FAILED|ERROR|passed|failed" | tail -25
}

if [ "$PHASE" = env ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch; print(torch.__version__, torch.version.cuda, torch.backends.cudnn.version())"
  $PY -m propainter_wire doctor --json > "$OUT/doctor.json"; echo "doctor rc=$?"
  gpu_tests 420 tests
fi

weights() {
  mkdir -p .devcarry/ref/weights
  [ -f .devcarry/ref/weights/ProPainter.pth ] || \
    $PY -c "from propainter_wire.testing import write_deterministic_checkpoints as w; w('.devcarry/ref/weights')"
}

psnr() {  # name, width, height, frames: fp16/auto outputs against fp32
  $PY benchmarks/bench.py --write-clip /tmp/c_$1 --source "$BMX" --width "$2" --height "$3" --frames "$4"
  for p in fp16 auto; do
    $PY benchmarks/compare.py /tmp/keep_${1}_$p /tmp/keep_${1}_fp32 /tmp/c_$1/masks > "$OUT/psnr_${1}_${p}_vs_fp32.json"
    echo "psnr $1 $p vs fp32: $(cat "$OUT/psnr_${1}_${p}_vs_fp32.json")"
  done
}

if [ "$PHASE" = table1 ]; then
  weights
  for size in "432 240 80" "1280 720 80" "1920 1080 50"; do
    set -- $size; n=${1}x${2}x${3}
    reference ref_$n "$1" "$2" "$3"
    for p in auto fp16 fp32; do
      bench ours_${n}_$p --width "$1" --height "$2" --frames "$3" --precision $p --keep-output /tmp/keep_${n}_$p
    done
  done
  psnr 1280x720x80 1280 720 80
fi

if [ "$PHASE" = table3 ]; then
  weights
  reference ref_1280x720x80 1280 720 80
  for p in auto fp16; do bench ours_1280x720x80_$p --width 1280 --height 720 --frames 80 --precision $p; done
  for p in auto fp16; do bench ours_1920x1080x50_$p --width 1920 --height 1080 --frames 50 --precision $p; done
  bench ours_3840x2160x16_fp16 --width 3840 --height 2160 --frames 16 --precision fp16
  bench ours_1280x720x240_fp16 --width 1280 --height 720 --frames 240 --precision fp16
  reference ref_1280x720x240 1280 720 240
fi

if [ "$PHASE" = final ]; then
  weights
  for size in "432 240 80" "1280 720 80" "1920 1080 50"; do
    set -- $size; n=${1}x${2}x${3}
    reference ref_$n "$1" "$2" "$3"
    for p in fp16 auto; do bench ours_${n}_$p --width "$1" --height "$2" --frames "$3" --precision $p; done
  done
  bench ours_1280x720x240_fp16 --width 1280 --height 720 --frames 240 --precision fp16
  bench ours_3840x2160x16_fp16 --width 3840 --height 2160 --frames 16 --precision fp16
fi

if [ "$PHASE" = check ]; then
  weights
  reference ref_1280x720x80 1280 720 80
  for p in fp16 auto fp32; do
    bench ours_1280x720x80_$p --width 1280 --height 720 --frames 80 --precision $p --keep-output /tmp/keep_1280x720x80_$p
  done
  psnr 1280x720x80 1280 720 80
  bench ours_1920x1080x50_fp16 --width 1920 --height 1080 --frames 50 --precision fp16
fi

if [ "$PHASE" = last ]; then
  weights
  for size in "1280 720 80" "1920 1080 50"; do
    set -- $size; n=${1}x${2}x${3}
    reference ref_$n "$1" "$2" "$3"
    for p in fp16 auto; do bench ours_${n}_$p --width "$1" --height "$2" --frames "$3" --precision $p; done
  done
fi

if [ "$PHASE" = small ]; then
  mkdir -p .devcarry/ref/weights
  $PY -c "from propainter_wire.testing import write_deterministic_checkpoints as w; w('.devcarry/ref/weights')"
  reference ref_432x240x80 432 240 80
  bench ours_432x240x80_fp16 --width 432 --height 240 --frames 80 --precision fp16
  bench ours_432x240x80_bf16 --width 432 --height 240 --frames 80 --precision bf16
  reference ref_1280x720x80 1280 720 80
  bench ours_1280x720x80_fp16 --width 1280 --height 720 --frames 80 --precision fp16 --keep-output /tmp/o16
  bench ours_1280x720x80_fp32 --width 1280 --height 720 --frames 80 --precision fp32 --keep-output /tmp/o32
  $PY benchmarks/bench.py --write-clip /tmp/c720 --source "$BMX" --width 1280 --height 720 --frames 80
  $PY benchmarks/compare.py /tmp/o16 /tmp/o32 /tmp/c720/masks > "$OUT/psnr_fp16_vs_fp32.json"; cat "$OUT/psnr_fp16_vs_fp32.json"
fi


if [ "$PHASE" = bounded ]; then  # second session: bounded memory, channels-last, flash attention; A/B switches
  weights
  # smoke first: a broken GPU-only path stops the phase before the long runs
  smoke || exit 1
  reference ref_1280x720x80 1280 720 80
  for p in fp16 auto fp32; do
    bench ours_1280x720x80_$p --width 1280 --height 720 --frames 80 --precision $p --keep-output /tmp/keep_1280x720x80_$p
  done
  psnr 1280x720x80 1280 720 80
  PROPAINTER_WIRE_CHANNELS_LAST=0 bench ours_1280x720x80_fp16_nchw --width 1280 --height 720 --frames 80 --precision fp16
  PROPAINTER_WIRE_RAFT_BUDGET_GIB=12 bench ours_1280x720x80_fp16_raft12 --width 1280 --height 720 --frames 80 --precision fp16
  bench ours_1280x720x240_fp16 --width 1280 --height 720 --frames 240 --precision fp16
  bench ours_1920x1080x50_fp16 --width 1920 --height 1080 --frames 50 --precision fp16
  bench ours_432x240x80_fp16 --width 432 --height 240 --frames 80 --precision fp16
  bench ours_3840x2160x16_fp16 --width 3840 --height 2160 --frames 16 --precision fp16
fi

if [ "$PHASE" = bounded2 ]; then  # after the A/B of "bounded": channels-last off, propagation spans whole below 5 GiB
  weights
  smoke || exit 1
  bench ours_1280x720x80_fp16 --width 1280 --height 720 --frames 80 --precision fp16
  reference ref_1280x720x80 1280 720 80
  bench ours_1920x1080x50_fp16 --width 1920 --height 1080 --frames 50 --precision fp16
  bench ours_1280x720x240_fp16 --width 1280 --height 720 --frames 240 --precision fp16
  bench ours_1280x720x80_auto --width 1280 --height 720 --frames 80 --precision auto
  bench ours_432x240x80_fp16 --width 432 --height 240 --frames 80 --precision fp16
  reference ref_1920x1080x50 1920 1080 50
fi

if [ "$PHASE" = profile3 ]; then  # third session: where the GPU time goes at 720p, and the current commit's figures
  weights
  smoke || exit 1
  timeout 240 $PY benchmarks/profile_engine.py --width 1280 --height 720 --frames 40 --source "$BMX" --profile \
    --sort self_device_time_total,self_cpu_time_total --rows 45 > "$OUT/profile_720x40.txt" 2>&1
  grep -A6 "^stage " "$OUT/profile_720x40.txt"
  bench ours_1280x720x80_fp16 --width 1280 --height 720 --frames 80 --precision fp16
  PROPAINTER_WIRE_RAFT_HALF_PYRAMID=1 bench ours_1280x720x80_fp16_halfpyr --width 1280 --height 720 --frames 80 \
    --precision fp16
  bench ours_1280x720x240_fp16 --width 1280 --height 720 --frames 240 --precision fp16
fi

if [ "$PHASE" = speed3 ]; then  # third session: precast weights, half storage, pinned host store, RAFT CUDA graphs
  weights
  smoke || exit 1
  gpu_tests 240 tests/test_gpu_speedups.py tests/test_propagation_streaming.py tests/test_flow_completion.py
  bench ours_1280x720x80_fp16 --width 1280 --height 720 --frames 80 --precision fp16 --keep-output /tmp/keep_720_fp16
  reference ref_1280x720x80 1280 720 80
  PROPAINTER_WIRE_PIN_HOST=0 bench ours_1280x720x80_fp16_nopin --width 1280 --height 720 --frames 80 --precision fp16
  PROPAINTER_WIRE_CUDA_GRAPHS=0 bench ours_1280x720x80_fp16_nographs --width 1280 --height 720 --frames 80 \
    --precision fp16
  PROPAINTER_WIRE_CHANNELS_LAST=1 bench ours_1280x720x80_fp16_cl --width 1280 --height 720 --frames 80 --precision fp16
  PROPAINTER_WIRE_TRANSFORMER_BUDGET_GIB=1 bench ours_1280x720x80_fp16_tb1 --width 1280 --height 720 --frames 80 \
    --precision fp16
  bench ours_1280x720x80_fp32 --width 1280 --height 720 --frames 80 --precision fp32 --keep-output /tmp/keep_720_fp32
  $PY benchmarks/bench.py --write-clip /tmp/c720 --source "$BMX" --width 1280 --height 720 --frames 80
  $PY benchmarks/compare.py /tmp/keep_720_fp16 /tmp/keep_720_fp32 /tmp/c720/masks > "$OUT/psnr_720_fp16_vs_fp32.json"
  cat "$OUT/psnr_720_fp16_vs_fp32.json"
  bench ours_1280x720x240_fp16 --width 1280 --height 720 --frames 240 --precision fp16
  bench ours_1920x1080x50_fp16 --width 1920 --height 1080 --frames 50 --precision fp16
  timeout 200 $PY benchmarks/profile_engine.py --width 1280 --height 720 --frames 40 --source "$BMX" --profile \
    --sort self_device_time_total,self_cpu_time_total --rows 30 > "$OUT/profile_720x40.txt" 2>&1
  grep -A5 "^stage " "$OUT/profile_720x40.txt"
fi

clip() {  # width, height, frames: the clip folder (written once, shared by our runs and the reference's)
  local d="$CLIPS/${1}x${2}x${3}"
  [ -d "$d" ] || $PY benchmarks/bench.py --write-clip "$d" --source "$BMX" --width "$1" --height "$2" --frames "$3"
  echo "$d"
}

run3() {  # name, width, height, frames, more bench args: ours on the shared clip
  local name=$1 w=$2 h=$3 n=$4; shift 4
  bench "$name" --width "$w" --height "$h" --frames "$n" --clip "$(clip "$w" "$h" "$n")" "$@"
}

against_ref() {  # width, height, frames, more args for the first run: ours, the reference, ours again
  local w=$1 h=$2 n=$3; shift 3
  run3 "ours_${w}x${h}x${n}_fp16" "$w" "$h" "$n" --precision fp16 "$@"
  reference "ref_${w}x${h}x${n}" "$w" "$h" "$n"
  run3 "ours_${w}x${h}x${n}_fp16_b" "$w" "$h" "$n" --precision fp16
}

if [ "$PHASE" = final3 ]; then  # third session, closing figures (after the speed3 A/B)
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py tests/test_propagation_streaming.py tests/test_flow_completion.py
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16 --keep-output /tmp/keep_720_fp16
  reference ref_1280x720x80 1280 720 80
  run3 ours_1280x720x80_fp32 1280 720 80 --precision fp32 --keep-output /tmp/keep_720_fp32
  $PY benchmarks/compare.py /tmp/keep_720_fp16 /tmp/keep_720_fp32 "$CLIPS/1280x720x80/masks" \
    > "$OUT/psnr_720_fp16_vs_fp32.json"; cat "$OUT/psnr_720_fp16_vs_fp32.json"
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
  run3 ours_1920x1080x50_fp16 1920 1080 50 --precision fp16
  reference ref_1920x1080x50 1920 1080 50
  run3 ours_1280x720x80_fp16_disk 1280 720 80 --precision fp16 --scratch disk
  run3 ours_1280x720x240_fp16_disk 1280 720 240 --precision fp16 --scratch disk
fi

if [ "$PHASE" = final5b ]; then  # fifth session, closing figures, part 2 (same machine): 432x240, length, 4K
  weights
  run3 ours_432x240x80_fp16 432 240 80 --precision fp16
  reference ref_432x240x80 432 240 80
  run3 ours_3840x2160x16_fp16 3840 2160 16 --precision fp16
fi

if [ "$PHASE" = last3 ]; then  # third session, last call: GPU tests at the final commit, deform A/B, 720p again
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py tests/test_propagation_streaming.py tests/test_flow_completion.py \
    tests/test_deform.py
  for d in auto sampled; do
    echo "deform=$d: $(timeout 100 $PY benchmarks/profile_engine.py --width 1280 --height 720 --frames 40 \
      --source "$BMX" --deform $d | tail -n 1)" | tee -a "$OUT/deform_ab.txt"
  done
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  reference ref_1280x720x80 1280 720 80
fi

if [ "$PHASE" = auto3 ]; then  # third session: `auto` with TF32 RAFT, A/B against `auto` and fp32 (precision)
  # (commit 7ba3ceb, where PROPAINTER_WIRE_AUTO_TF32=1 switched it on; not kept: the issue wants auto's RAFT in fp32)
  weights
  timeout 120 $PY benchmarks/profile_engine.py --width 432 --height 240 --frames 12 --source "$BMX" --precision auto \
    | tail -n 1 || exit 1
  run3 ours_1280x720x80_auto 1280 720 80 --precision auto --keep-output /tmp/k_auto
  PROPAINTER_WIRE_AUTO_TF32=1 run3 ours_1280x720x80_auto_tf32 1280 720 80 --precision auto --keep-output /tmp/k_tf32
  run3 ours_1280x720x80_fp32 1280 720 80 --precision fp32 --keep-output /tmp/k_fp32
  for v in auto tf32; do
    echo "$v vs fp32: $($PY benchmarks/compare.py /tmp/k_$v /tmp/k_fp32 "$CLIPS/1280x720x80/masks")" | tee -a "$OUT/psnr.txt"
  done
fi

if [ "$PHASE" = probe4 ]; then  # fourth session: where the GPU time goes, per module, and RAFT A/B variants
  weights
  smoke || exit 1
  timeout 200 $PY benchmarks/raft_variants.py --width 1280 --height 720 --frames 17 --source "$BMX" \
    | tee "$OUT/raft_variants.jsonl"
  timeout 240 $PY benchmarks/module_times.py --width 1280 --height 720 --frames 40 --source "$BMX" \
    > "$OUT/module_times_720x40.txt" 2>&1
  head -c 9000 "$OUT/module_times_720x40.txt"
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  PROPAINTER_WIRE_CHANNELS_LAST=raft_update run3 ours_1280x720x80_fp16_raftcl 1280 720 80 --precision fp16
fi

if [ "$PHASE" = ab4 ]; then  # fourth session: GPU tests, then A/B of the new kernels and cuDNN autotuning
  weights
  smoke || exit 1
  gpu_tests 200 tests/test_gpu_speedups.py tests/test_propagation_streaming.py tests/test_flow_completion.py \
    tests/test_deform.py tests/test_raft.py
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  PROPAINTER_WIRE_CUDNN_BENCHMARK=none run3 ours_1280x720x80_fp16_notune 1280 720 80 --precision fp16
  PROPAINTER_WIRE_CUDNN_BENCHMARK=flow,complete,transformer run3 ours_1280x720x80_fp16_tuneall 1280 720 80 \
    --precision fp16
  timeout 200 $PY benchmarks/module_times.py --width 1280 --height 720 --frames 40 --source "$BMX" \
    > "$OUT/module_times_720x40.txt" 2>&1
  grep -E "plain|F\.|corr|deform|inp\.(transformers|feat_prop_module|decoder|encoder|sc|ss) |raft\.(update_block|fnet|cnet) |gru " \
    "$OUT/module_times_720x40.txt"
fi

if [ "$PHASE" = feed4 ] || [ "$PHASE" = conv4 ]; then  # fourth session: prefetched window inputs (feed4); 2-D flow-completion convs, RAFT norm, on-device build (conv4)
  weights
  smoke || exit 1
  gpu_tests 200 tests/test_transfer.py tests/test_gpu_speedups.py tests/test_propagation_streaming.py \
    tests/test_speed_paths.py
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16_disk 1280 720 80 --precision fp16 --scratch disk
  timeout 200 $PY benchmarks/module_times.py --width 1280 --height 720 --frames 40 --source "$BMX" \
    > "$OUT/module_times_720x40.txt" 2>&1
  grep -E "plain|F\.|corr|deform|inp\.(transformers|feat_prop_module|decoder|encoder|sc|ss) |raft\.(update_block|fnet|cnet) |gru |fc\.feat_prop_module " \
    "$OUT/module_times_720x40.txt"
fi

if [ "$PHASE" = enc4 ]; then  # fourth session: RAFT's encoders under cuDNN heuristics / autotuning; run-to-run spread
  weights
  smoke || exit 1
  gpu_tests 100 tests/test_raft.py tests/test_gpu_speedups.py
  timeout 120 $PY benchmarks/encoder_probe.py --width 1280 --height 720 | tee "$OUT/encoder_probe.jsonl"
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  PROPAINTER_WIRE_CUDNN_BENCHMARK=flow run3 ours_1280x720x80_fp16_tuneflow 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16_again 1280 720 80 --precision fp16
fi

if [ "$PHASE" = cl4 ]; then  # fourth session: channels-last per network part (A/B), after a warm-up run
  weights
  smoke || exit 1
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  for part in raft_encoders inpainter_decoder,inpainter_encoder feat_prop flow_completion transformer; do
    PROPAINTER_WIRE_CHANNELS_LAST=$part run3 ours_1280x720x80_fp16_cl_$part 1280 720 80 --precision fp16
  done
  run3 ours_1280x720x80_fp16_again 1280 720 80 --precision fp16
fi

if [ "$PHASE" = final4a ]; then  # fourth session, closing figures, part 1: GPU tests, 720p and 1080p, precision
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py tests/test_transfer.py tests/test_raft.py tests/test_speed_paths.py \
    tests/test_flow_completion.py tests/test_propagation_streaming.py tests/test_deform.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80 --keep-output /tmp/keep_720_fp16
  run3 ours_1280x720x80_auto 1280 720 80 --precision auto --keep-output /tmp/keep_720_auto
  run3 ours_1280x720x80_fp32 1280 720 80 --precision fp32 --keep-output /tmp/keep_720_fp32
  for p in fp16 auto; do
    $PY benchmarks/compare.py /tmp/keep_720_$p /tmp/keep_720_fp32 "$CLIPS/1280x720x80/masks" \
      > "$OUT/psnr_720_${p}_vs_fp32.json"; echo "$p: $(cat "$OUT/psnr_720_${p}_vs_fp32.json")"
  done
  against_ref 1920 1080 50
fi

if [ "$PHASE" = final4b ]; then  # fourth session, closing figures, part 2: 432x240, length, disk scratch, 4K
  weights
  smoke || exit 1
  run3 warmup_432x240x80_fp16 432 240 80 --precision fp16
fi

if [ "$PHASE" = final5b ]; then  # fifth session, closing figures, part 2 (same machine): 432x240, length, 4K
  weights
  against_ref 432 240 80
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
  run3 ours_1280x720x80_fp16_disk 1280 720 80 --precision fp16 --scratch disk
  run3 ours_1280x720x240_fp16_disk 1280 720 240 --precision fp16 --scratch disk
  run3 ours_3840x2160x16_fp16 3840 2160 16 --precision fp16
fi

if [ "$PHASE" = final4c ]; then  # fourth session, last call: half deformable convolution in fp16, asynchronous
  # write-back of stage results, GRU lerp; GPU tests; 720p and 1080p again with the reference
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py tests/test_transfer.py tests/test_raft.py tests/test_speed_paths.py \
    tests/test_flow_completion.py tests/test_propagation_streaming.py tests/test_deform.py tests/test_inpainter.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80 --keep-output /tmp/keep_720_fp16
  run3 ours_1280x720x80_fp32 1280 720 80 --precision fp32 --keep-output /tmp/keep_720_fp32
  $PY benchmarks/compare.py /tmp/keep_720_fp16 /tmp/keep_720_fp32 "$CLIPS/1280x720x80/masks" \
    > "$OUT/psnr_720_fp16_vs_fp32.json"; echo "fp16: $(cat "$OUT/psnr_720_fp16_vs_fp32.json")"
  against_ref 1920 1080 50
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
fi

if [ "$PHASE" = final4d ]; then  # fourth session: host memory with --scratch disk and 4K, final code
  weights
  smoke || exit 1
  run3 ours_1280x720x80_fp16_disk 1280 720 80 --precision fp16 --scratch disk
  run3 ours_1280x720x240_fp16_disk 1280 720 240 --precision fp16 --scratch disk
  run3 ours_3840x2160x16_fp16 3840 2160 16 --precision fp16
fi

if [ "$PHASE" = local4 ] || [ "$PHASE" = tiles4 ]; then  # fourth session: the local lookup: fp16 gathering (local4), tiles (tiles4)
  weights
  smoke || exit 1
  gpu_tests 100 tests/test_speed_paths.py tests/test_raft.py
  timeout 150 $PY benchmarks/raft_variants.py --width 1280 --height 720 --frames 9 --source "$BMX" \
    --variants base,local4,local4_fp32gather | tee "$OUT/raft_local.jsonl"
  run3 ours_3840x2160x16_fp16 3840 2160 16 --precision fp16
fi

if [ "$PHASE" = probe5 ]; then  # fifth session: where 432x240 and 1080p spend their time
  weights
  smoke || exit 1
  timeout 200 $PY benchmarks/profile_engine.py --width 432 --height 240 --frames 80 --source "$BMX" --profile \
    --sort cuda_time_total,cpu_time_total --rows 35 > "$OUT/profile_432.txt" 2>&1; grep -A9 "^stage " "$OUT/profile_432.txt"
  timeout 150 $PY benchmarks/raft_variants.py --width 432 --height 240 --frames 33 --source "$BMX" \
    --variants base,pairs4,pairs8,pairs16,nographs | tee "$OUT/raft_432.jsonl"
  timeout 200 $PY benchmarks/profile_engine.py --width 1920 --height 1080 --frames 30 --source "$BMX" --profile \
    --sort cuda_time_total --rows 45 > "$OUT/profile_1080.txt" 2>&1; grep -A9 "^stage " "$OUT/profile_1080.txt"
  timeout 200 $PY benchmarks/profile_engine.py --width 1280 --height 720 --frames 40 --source "$BMX" --profile \
    --sort cuda_time_total --rows 45 > "$OUT/profile_720.txt" 2>&1; grep -A9 "^stage " "$OUT/profile_720.txt"
fi

if [ "$PHASE" = rafts5 ]; then  # fifth session: RAFT's update step kernel by kernel, NCHW against channels-last
  timeout 200 $PY benchmarks/raft_variants.py --width 1280 --height 720 --frames 9 --source "$BMX" \
    --variants base,cl --profile | tee "$OUT/raft_720_kernels.txt"
  timeout 200 $PY benchmarks/raft_variants.py --width 1920 --height 1080 --frames 5 --source "$BMX" \
    --variants base,cl --profile | tee "$OUT/raft_1080_kernels.txt"
fi

if [ "$PHASE" = cl5 ]; then  # fifth session: RAFT's update step all-NHWC (flow state channels-last too), TF32 volume
  weights
  smoke || exit 1
  gpu_tests 100 tests/test_gpu_speedups.py tests/test_raft.py
  timeout 200 $PY benchmarks/raft_variants.py --width 1280 --height 720 --frames 9 --source "$BMX" \
    --variants base,cl --profile | tee "$OUT/raft_720_kernels.txt" | grep -v "^#  "
  timeout 200 $PY benchmarks/raft_variants.py --width 1920 --height 1080 --frames 5 --source "$BMX" \
    --variants base,cl | tee "$OUT/raft_1080.txt"
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  PROPAINTER_WIRE_CHANNELS_LAST=raft_update run3 ours_1280x720x80_fp16_raftcl 1280 720 80 --precision fp16
  run3 ours_1920x1080x50_fp16 1920 1080 50 --precision fp16
  PROPAINTER_WIRE_CHANNELS_LAST=raft_update run3 ours_1920x1080x50_fp16_raftcl 1920 1080 50 --precision fp16
fi

if [ "$PHASE" = mt5 ]; then  # fifth session: GPU time per module, deeper (RAFT encoders, transformer blocks)
  timeout 300 $PY benchmarks/module_times.py --width 1280 --height 720 --frames 20 --source "$BMX" --depth 5 \
    --min-ms 1 > "$OUT/module_times_720.txt" 2>&1; tail -n 3 "$OUT/module_times_720.txt"
fi

if [ "$PHASE" = gather5 ]; then  # fifth session: window rows gathered by numpy (one thread) or ATen (all cores)
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py tests/test_transfer.py
  timeout 300 $PY benchmarks/module_times.py --width 1280 --height 720 --frames 20 --source "$BMX" --depth 3 \
    --min-ms 1 > "$OUT/module_times_720.txt" 2>&1; grep -E "^\{|transformer\.[0-9] " "$OUT/module_times_720.txt"
  PROPAINTER_WIRE_PREFETCH_GATHER=torch timeout 300 $PY benchmarks/module_times.py --width 1280 --height 720 \
    --frames 20 --source "$BMX" --depth 3 --min-ms 1 > "$OUT/module_times_720_torch.txt" 2>&1
  grep -E "^\{|transformer\.[0-9] " "$OUT/module_times_720_torch.txt"
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  PROPAINTER_WIRE_PREFETCH_GATHER=torch run3 ours_1280x720x80_fp16_torchgather 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16_b 1280 720 80 --precision fp16
fi

if [ "$PHASE" = final5 ]; then  # fifth session, closing figures: GPU tests; 720p and 1080p with the reference in
  # the same call; precision; 1080p with half pyramids (A/B)
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py tests/test_transfer.py tests/test_raft.py tests/test_speed_paths.py \
    tests/test_flow_completion.py tests/test_propagation_streaming.py tests/test_deform.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80 --keep-output /tmp/keep_720_fp16
  run3 ours_1280x720x80_fp32 1280 720 80 --precision fp32 --keep-output /tmp/keep_720_fp32
  $PY benchmarks/compare.py /tmp/keep_720_fp16 /tmp/keep_720_fp32 "$CLIPS/1280x720x80/masks" \
    > "$OUT/psnr_720_fp16_vs_fp32.json"; echo "720 fp16: $(cat "$OUT/psnr_720_fp16_vs_fp32.json")"
  against_ref 1920 1080 50 --keep-output /tmp/keep_1080_fp16
  PROPAINTER_WIRE_RAFT_HALF_PYRAMID=1 run3 ours_1920x1080x50_fp16_halfpyr 1920 1080 50 --precision fp16 \
    --keep-output /tmp/keep_1080_halfpyr
  run3 ours_1920x1080x50_fp32 1920 1080 50 --precision fp32 --keep-output /tmp/keep_1080_fp32
  for v in fp16 halfpyr; do
    $PY benchmarks/compare.py /tmp/keep_1080_$v /tmp/keep_1080_fp32 "$CLIPS/1920x1080x50/masks" \
      > "$OUT/psnr_1080_${v}_vs_fp32.json"; echo "1080 $v: $(cat "$OUT/psnr_1080_${v}_vs_fp32.json")"
  done
fi

if [ "$PHASE" = final5b ]; then  # fifth session, closing figures, part 2 (same machine): 432x240, length, 4K
  weights
  against_ref 432 240 80
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
  run3 ours_3840x2160x16_fp16 3840 2160 16 --precision fp16
fi

if [ "$PHASE" = stream5 ]; then  # fifth session: frames decoding while RAFT starts (A/B: --overwrite reads first)
  weights
  smoke || exit 1
  gpu_tests 100 tests/test_stream.py tests/test_transfer.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16_readfirst 1280 720 80 --precision fp16 --overwrite
  run3 ours_1280x720x80_fp16_b 1280 720 80 --precision fp16
  run3 ours_1920x1080x50_fp16 1920 1080 50 --precision fp16
  run3 ours_1920x1080x50_fp16_readfirst 1920 1080 50 --precision fp16 --overwrite
  run3 ours_432x240x80_fp16 432 240 80 --precision fp16
  run3 ours_432x240x80_fp16_readfirst 432 240 80 --precision fp16 --overwrite
fi

if [ "$PHASE" = ab5 ]; then  # fifth session: streaming A/B, interleaved (machines vary more than the effect)
  weights
  smoke || exit 1
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  for k in 1 2 3; do
    run3 ours_1280x720x80_fp16_stream_$k 1280 720 80 --precision fp16
    run3 ours_1280x720x80_fp16_readfirst_$k 1280 720 80 --precision fp16 --overwrite
  done
  for k in 1 2; do
    run3 ours_1920x1080x50_fp16_stream_$k 1920 1080 50 --precision fp16
    run3 ours_1920x1080x50_fp16_readfirst_$k 1920 1080 50 --precision fp16 --overwrite
  done
fi

if [ "$PHASE" = final5c ]; then  # fifth session, closing figures after streaming + meta-built loading (part 1)
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py tests/test_transfer.py tests/test_raft.py tests/test_speed_paths.py \
    tests/test_stream.py tests/test_weights.py tests/test_deform.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80 --keep-output /tmp/keep_720_fp16
  against_ref 1920 1080 50
fi

if [ "$PHASE" = final5d ]; then  # part 2 (same machine): 432x240 with the reference, length, 4K
  weights
  against_ref 432 240 80
  run3 ours_3840x2160x16_fp16 3840 2160 16 --precision fp16
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
fi

if [ "$PHASE" = final5e ]; then  # fifth session, closing figures after deferred checkpoint loading: GPU tests;
  # 720p, 1080p and 432x240, each with the reference in the same call
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py tests/test_transfer.py tests/test_raft.py tests/test_speed_paths.py \
    tests/test_stream.py tests/test_weights.py tests/test_faults.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80
  against_ref 1920 1080 50
  against_ref 432 240 80
fi

if [ "$PHASE" = probe6 ]; then  # sixth session: where the wall time goes (glue between stages, GPU idle per stage)
  weights
  smoke || exit 1
  c720=$(clip 1280 720 80); c432=$(clip 432 240 80)
  for c in "$c720" "$c432"; do
    timeout 120 $PY benchmarks/timeline.py --clip "$c" --precision fp16 | tee -a "$OUT/timeline.txt"
  done
  timeout 200 $PY benchmarks/profile_engine.py --width 1280 --height 720 --frames 80 --source "$BMX" --profile \
    --sort self_device_time_total --rows 45 > "$OUT/profile_720x80.txt" 2>&1
  grep -A6 "^stage " "$OUT/profile_720x80.txt"; grep "seconds" "$OUT/profile_720x80.txt"
  timeout 200 $PY benchmarks/profile_engine.py --width 432 --height 240 --frames 80 --source "$BMX" --profile \
    --sort self_device_time_total,self_cpu_time_total --rows 30 > "$OUT/profile_432x80.txt" 2>&1
  grep -A6 "^stage " "$OUT/profile_432x80.txt"; grep "seconds" "$OUT/profile_432x80.txt"
  timeout 200 $PY benchmarks/module_times.py --width 1280 --height 720 --frames 40 --source "$BMX" --depth 3 \
    --min-ms 2 > "$OUT/module_times_720x40.txt" 2>&1; head -c 6000 "$OUT/module_times_720x40.txt"
fi


if [ "$PHASE" = block6 ]; then  # sixth session: one transformer block's parts; feed-forward and SoftSplit/SoftComp
  # as (transposed) convolutions against the token-row forms (A/B in one process); the engine at 720p and 432
  weights
  smoke || exit 1
  gpu_tests 200 tests/test_speed_paths.py tests/test_inpainter.py tests/test_inpainter_chunking.py
  for size in "1280 720 18 11" "1920 1080 18 11" "432 240 18 11"; do
    set -- $size
    timeout 120 $PY benchmarks/block_probe.py --width "$1" --height "$2" --frames "$3" --local "$4" \
      > "$OUT/block_${1}x${2}.txt" 2>&1; grep '"size"' "$OUT/block_${1}x${2}.txt"
  done
  head -c 5000 "$OUT/block_1280x720.txt"
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16 --keep-output /tmp/keep_720_fp16
  run3 ours_1280x720x80_fp32 1280 720 80 --precision fp32 --keep-output /tmp/keep_720_fp32
  $PY benchmarks/compare.py /tmp/keep_720_fp16 /tmp/keep_720_fp32 "$CLIPS/1280x720x80/masks" \
    > "$OUT/psnr_720_fp16_vs_fp32.json"; echo "720 fp16: $(cat "$OUT/psnr_720_fp16_vs_fp32.json")"
  run3 ours_432x240x80_fp16 432 240 80 --precision fp16
  run3 ours_1920x1080x50_fp16 1920 1080 50 --precision fp16
fi

if [ "$PHASE" = mid6 ] || [ "$PHASE" = final6 ]; then  # sixth session: feed-forward/SoftSplit/SoftComp as
  # convolutions (GPU: fc1+fold transposed, fc2 as rows), attention projections without a large padding (mid6:
  # without any padding); block probes (mid6), then ours against the reference in the same call at 720p, 1080p
  # and 432x240; precision
  weights
  smoke || exit 1
  if [ "$PHASE" = mid6 ]; then
    gpu_tests 200 tests/test_speed_paths.py tests/test_inpainter.py tests/test_inpainter_chunking.py \
      tests/test_gpu_speedups.py tests/test_weights.py tests/test_raft.py
    for size in "1280 720 18 11" "432 240 18 11"; do
      set -- $size
      timeout 120 $PY benchmarks/block_probe.py --width "$1" --height "$2" --frames "$3" --local "$4" \
        > "$OUT/block_${1}x${2}.txt" 2>&1; grep '"size"' "$OUT/block_${1}x${2}.txt"
    done
  else
    gpu_tests 150 tests/test_speed_paths.py tests/test_inpainter_chunking.py tests/test_gpu_speedups.py
  fi
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80 --keep-output /tmp/keep_720_fp16
  against_ref 1920 1080 50
  against_ref 432 240 80
  run3 ours_1280x720x80_fp32 1280 720 80 --precision fp32 --keep-output /tmp/keep_720_fp32
  $PY benchmarks/compare.py /tmp/keep_720_fp16 /tmp/keep_720_fp32 "$CLIPS/1280x720x80/masks" \
    > "$OUT/psnr_720_fp16_vs_fp32.json"; echo "720 fp16: $(cat "$OUT/psnr_720_fp16_vs_fp32.json")"
fi

if [ "$PHASE" = final6b ]; then  # sixth session, closing figures part 2 (same machine): length, 4K, repeats
  weights
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
  run3 ours_3840x2160x16_fp16 3840 2160 16 --precision fp16
  run3 ours_1280x720x80_fp16_c 1280 720 80 --precision fp16
  reference ref_1280x720x80_b 1280 720 80
  run3 ours_1280x720x80_fp16_d 1280 720 80 --precision fp16
  run3 ours_1920x1080x50_fp16_c 1920 1080 50 --precision fp16
  run3 ours_432x240x80_fp16_c 432 240 80 --precision fp16
fi

if [ "$PHASE" = pre6 ]; then  # sixth session: the later stages' networks placed and their kernels loaded on a
  # side thread while RAFT runs (A/B interleaved, PROPAINTER_WIRE_PRELOAD=0 = off), reference in the same call
  weights
  smoke || exit 1
  gpu_tests 150 tests/test_gpu_speedups.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  PROPAINTER_WIRE_PRELOAD=0 run3 ours_1280x720x80_fp16_nopreload 1280 720 80 --precision fp16
  reference ref_1280x720x80 1280 720 80
  run3 ours_1280x720x80_fp16_b 1280 720 80 --precision fp16
  PROPAINTER_WIRE_PRELOAD=0 run3 ours_1280x720x80_fp16_nopreload_b 1280 720 80 --precision fp16
  run3 ours_1920x1080x50_fp16 1920 1080 50 --precision fp16
  PROPAINTER_WIRE_PRELOAD=0 run3 ours_1920x1080x50_fp16_nopreload 1920 1080 50 --precision fp16
  reference ref_1920x1080x50 1920 1080 50
  run3 ours_1920x1080x50_fp16_b 1920 1080 50 --precision fp16
  run3 ours_432x240x80_fp16 432 240 80 --precision fp16
  PROPAINTER_WIRE_PRELOAD=0 run3 ours_432x240x80_fp16_nopreload 432 240 80 --precision fp16
  reference ref_432x240x80 432 240 80
  run3 ours_432x240x80_fp16_b 432 240 80 --precision fp16
  PROPAINTER_WIRE_PRELOAD=0 run3 ours_432x240x80_fp16_nopreload_b 432 240 80 --precision fp16
fi

if [ "$PHASE" = final7 ]; then  # sixth session, closing figures: the final code (preloading from 3/4 of 720p up)
  weights
  smoke || exit 1
  gpu_tests 100 tests/test_gpu_speedups.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80
  against_ref 1920 1080 50
  against_ref 432 240 80
fi

if [ "$PHASE" = probe7 ]; then  # seventh session: per stage, GPU busy against wall and the costliest kernels
  # (1080p with RAFT eager so its kernels are seen; 432x240 as run), and 1080p's timeline
  weights
  smoke || exit 1
  c1080=$(clip 1920 1080 50)
  timeout 120 $PY benchmarks/timeline.py --clip "$c1080" --precision fp16 | tee -a "$OUT/timeline.txt"
  PROPAINTER_WIRE_CUDA_GRAPHS=0 timeout 300 $PY benchmarks/profile_engine.py --width 1920 --height 1080 --frames 50 \
    --source "$BMX" --profile --stage-kernels 25 --sort self_cpu_time_total --rows 30 > "$OUT/profile_1080x50.txt" 2>&1
  grep -A26 "^==" "$OUT/profile_1080x50.txt" | cut -c1-150; grep "seconds" "$OUT/profile_1080x50.txt"
  timeout 200 $PY benchmarks/profile_engine.py --width 432 --height 240 --frames 80 --source "$BMX" --profile \
    --stage-kernels 12 --sort self_cpu_time_total --rows 40 > "$OUT/profile_432x80.txt" 2>&1
  grep -A13 "^==" "$OUT/profile_432x80.txt" | cut -c1-150; grep "seconds" "$OUT/profile_432x80.txt"
fi

if [ "$PHASE" = fuse7 ]; then  # seventh session: cuDNN's fused convolution + bias + ReLU against the separate passes
  for shapes in raft1080 raft720; do
    timeout 200 $PY benchmarks/fusion_probe.py --shapes "$shapes" | tee "$OUT/fusion_${shapes}.jsonl"
  done
  timeout 200 $PY benchmarks/fusion_probe.py --shapes raft1080 --benchmark | tee "$OUT/fusion_raft1080_benchmark.jsonl"
fi

if [ "$PHASE" = fused7 ]; then  # seventh session: RAFT's convolution epilogues fused in cuDNN (bias, batch norm,
  # ReLU), A/B interleaved against the library layers (PROPAINTER_WIRE_FUSED_EPILOGUES=0) and the update block
  # only (=update); fp16 against fp32 inside the masks; propagation spans with half flows moved whole
  weights
  smoke || exit 1
  gpu_tests 200 tests/test_gpu_speedups.py tests/test_raft.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  for r in a b; do
    run3 "fused_1920x1080x50_$r" 1920 1080 50 --precision fp16
    PROPAINTER_WIRE_FUSED_EPILOGUES=0 run3 "lib_1920x1080x50_$r" 1920 1080 50 --precision fp16
    PROPAINTER_WIRE_FUSED_EPILOGUES=update run3 "update_1920x1080x50_$r" 1920 1080 50 --precision fp16
  done
  for r in a b; do
    run3 "fused_1280x720x80_$r" 1280 720 80 --precision fp16 --keep-output /tmp/k720_fp16
    PROPAINTER_WIRE_FUSED_EPILOGUES=0 run3 "lib_1280x720x80_$r" 1280 720 80 --precision fp16
  done
  run3 fp32_1280x720x80 1280 720 80 --precision fp32 --keep-output /tmp/k720_fp32
  $PY benchmarks/compare.py /tmp/k720_fp16 /tmp/k720_fp32 "$(clip 1280 720 80)/masks" > "$OUT/psnr_720_fp16_vs_fp32.json"
  echo "psnr fp16 vs fp32: $(cat "$OUT/psnr_720_fp16_vs_fp32.json")"
  run3 fused_432x240x80 432 240 80 --precision fp16
  PROPAINTER_WIRE_FUSED_EPILOGUES=0 run3 lib_432x240x80 432 240 80 --precision fp16
fi

if [ "$PHASE" = rafts7 ]; then  # seventh session: RAFT alone, fused epilogues A/B interleaved in one process
  for size in "1920 1080 9" "1280 720 17" "432 240 33"; do
    set -- $size
    timeout 300 $PY benchmarks/raft_variants.py --width "$1" --height "$2" --frames "$3" --source "$BMX" \
      --variants cl_lib,cl_fused,cl_update --rounds 3 | tee -a "$OUT/raft_fused_${1}x${2}.jsonl"
  done
fi

if [ "$PHASE" = cl7 ]; then  # seventh session: channels-last inpainter parts on the GPU again (the transformer's
  # patch layers are convolutions since the sixth session), warm stage times of one process, interleaved
  weights
  for r in a b; do
    for parts in raft_update raft_update,transformer raft_update,transformer,feat_prop,inpainter_encoder,inpainter_decoder; do
      echo "$r $parts: $(PROPAINTER_WIRE_CHANNELS_LAST=$parts timeout 200 $PY benchmarks/profile_engine.py --width 1920 \
        --height 1080 --frames 50 --source "$BMX" | tail -n 1)" | tee -a "$OUT/cl7.txt"
    done
  done
fi

if [ "$PHASE" = final8 ]; then  # seventh session, closing figures: fused RAFT epilogues, against the reference
  weights
  smoke || exit 1
  gpu_tests 300 tests/test_gpu_speedups.py tests/test_raft.py tests/test_transfer.py tests/test_doctor.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80
  against_ref 1920 1080 50
  against_ref 432 240 80
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
fi

if [ "$PHASE" = clfc7 ]; then  # seventh session: flow completion channels-last on the GPU (warm stage times)
  weights
  for r in a b; do
    for parts in raft_update raft_update,flow_completion; do
      echo "$r $parts: $(PROPAINTER_WIRE_CHANNELS_LAST=$parts timeout 200 $PY benchmarks/profile_engine.py --width 1920 \
        --height 1080 --frames 50 --source "$BMX" | tail -n 1)" | tee -a "$OUT/clfc7.txt"
    done
  done
fi

if [ "$PHASE" = len8 ]; then  # seventh session: peak against clip length at 720p, then 1080p once more; run
  # twice with code since reverted (a reference-frame chunk budget, then the attention projecting in frame
  # chunks: results/h100_budget7.jsonl, h100_attnchunks7.jsonl)
  weights
  smoke || exit 1
  gpu_tests 200 tests/test_inpainter_chunking.py tests/test_inpainter.py
  run3 ours_1280x720x80_fp16 1280 720 80 --precision fp16
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
  run3 ours_1280x720x80_fp16_b 1280 720 80 --precision fp16
  run3 ours_1920x1080x50_fp16 1920 1080 50 --precision fp16
fi

if [ "$PHASE" = mem7 ]; then  # seventh session: what is alive at the GPU peak, 720p at 80 and 240 frames
  weights
  for n in 80 240; do
    timeout 240 $PY benchmarks/memory_peak.py --width 1280 --height 720 --frames "$n" --source "$BMX" \
      > "$OUT/memory_peak_720x$n.json" 2> "$OUT/memory_peak_720x$n.err"; head -c 3500 "$OUT/memory_peak_720x$n.json"
    tail -n 3 "$OUT/memory_peak_720x$n.err"
  done
fi

if [ "$PHASE" = final9 ]; then  # seventh session, closing figures after the feature cache stopped pinning batches
  weights
  smoke || exit 1
  gpu_tests 300 tests/test_gpu_speedups.py tests/test_raft.py tests/test_transfer.py tests/test_inpainter.py
  run3 warmup_1280x720x80_fp16 1280 720 80 --precision fp16
  against_ref 1280 720 80
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
  against_ref 1920 1080 50
  against_ref 432 240 80
fi

if [ "$PHASE" = check7 ]; then  # seventh session: the fused-convolution check (engine and doctor) on the GPU
  gpu_tests 300 tests/test_gpu_speedups.py tests/test_doctor.py tests/test_masks.py
  PYTHONPATH=src timeout 120 $PY -m propainter_wire doctor --json > "$OUT/doctor.json" 2> /dev/null
  echo "doctor exit $?"; grep -A3 '"cudnn fused' "$OUT/doctor.json" | grep -E "name|status|detail"
  smoke
fi

if [ "$PHASE" = batch8 ]; then  # eighth session: batching independent work on small frames (windows, directions)
  for size in "432 240 1,2,4,8" "864 480 1,2,4" "1280 720 1,2"; do
    set -- $size
    timeout 200 $PY benchmarks/batch_probe.py --width "$1" --height "$2" --groups "$3" \
      > "$OUT/batch_probe_${1}x$2.json" 2> "$OUT/batch_probe_${1}x$2.err"
    tail -n 6 "$OUT/batch_probe_${1}x$2.json" | head -n 5; tail -n 2 "$OUT/batch_probe_${1}x$2.err"
  done
fi

if [ "$PHASE" = final10 ]; then  # eighth session: windows and flow-completion directions batched on small frames
  weights
  smoke || exit 1
  gpu_tests 240 tests/test_batching.py tests/test_gpu_speedups.py tests/test_transfer.py tests/test_inpainter.py
  run3 warmup_432x240x80_fp16 432 240 80 --precision fp16
  # 432x240: batched (default) and one at a time (the seventh session's form), interleaved, reference between
  run3 ours_432x240x80_fp16 432 240 80 --precision fp16 --keep-output /tmp/keep_432_fp16
  (export PROPAINTER_WIRE_WINDOW_BATCH=1 PROPAINTER_WIRE_BATCH_DIRECTIONS=0; run3 apart_432x240x80_fp16 432 240 80 --precision fp16)
  reference ref_432x240x80 432 240 80
  (export PROPAINTER_WIRE_WINDOW_BATCH=1 PROPAINTER_WIRE_BATCH_DIRECTIONS=0; run3 apart_432x240x80_fp16_b 432 240 80 --precision fp16)
  run3 ours_432x240x80_fp16_b 432 240 80 --precision fp16
  run3 ours_432x240x80_fp32 432 240 80 --precision fp32 --keep-output /tmp/keep_432_fp32
  $PY benchmarks/compare.py /tmp/keep_432_fp16 /tmp/keep_432_fp32 "$CLIPS/432x240x80/masks" \
    > "$OUT/psnr_432_fp16_vs_fp32.json"; cat "$OUT/psnr_432_fp16_vs_fp32.json"
  against_ref 1280 720 80
  against_ref 1920 1080 50
fi

if [ "$PHASE" = cold8 ]; then  # eighth session: what lazy module loading costs a fresh process (432x240)
  weights
  for mode in LAZY EAGER; do
    CUDA_MODULE_LOADING=$mode $PY -c "import time, torch; t = time.perf_counter(); torch.empty(1, device='cuda'); \
torch.cuda.synchronize(); print('$mode context start', round(time.perf_counter() - t, 3), 's')"
    CUDA_MODULE_LOADING=$mode timeout 60 $PY benchmarks/cold_probe.py > "$OUT/cold_probe_$mode.json"; tr -d '\n' < "$OUT/cold_probe_$mode.json"; echo
  done
  for mode in LAZY EAGER LAZY EAGER; do
    start=$(date +%s.%N)
    (export CUDA_MODULE_LOADING=$mode; run3 "cold_${mode}_432x240x80_fp16" 432 240 80 --precision fp16)
    echo "$mode whole process $(awk -v a="$start" -v b="$(date +%s.%N)" "BEGIN {print b - a}") s"
  done
fi

if [ "$PHASE" = cold8b ]; then  # eighth session: what the cold run adds, per op; distinct convolution shapes
  for batch in 4 1; do
    PROPAINTER_WIRE_WINDOW_BATCH=$batch timeout 150 $PY benchmarks/profile_engine.py --width 432 --height 240 \
      --frames 80 --source "$BMX" --cold-diff 30 > "$OUT/cold_diff_432_batch$batch.txt" 2>&1
    grep -v USDT "$OUT/cold_diff_432_batch$batch.txt" | cut -c1-400
  done
  timeout 150 $PY benchmarks/profile_engine.py --width 1280 --height 720 --frames 80 --source "$BMX" --cold-diff 30 \
    > "$OUT/cold_diff_720.txt" 2>&1; grep -v USDT "$OUT/cold_diff_720.txt" | cut -c1-400
  timeout 120 $PY benchmarks/memory_peak.py --width 432 --height 240 --frames 80 --source "$BMX" \
    > "$OUT/memory_peak_432x80.json" 2> "$OUT/memory_peak_432x80.err"; head -c 2500 "$OUT/memory_peak_432x80.json"
fi

if [ "$PHASE" = final11 ]; then  # eighth session: + decoder in half precision, RAFT chunks of one shape
  weights
  smoke || exit 1
  gpu_tests 240 tests/test_batching.py tests/test_gpu_speedups.py tests/test_inpainter.py tests/test_raft.py
  run3 warmup_432x240x80_fp16 432 240 80 --precision fp16
  for round in a b; do  # transformer windows per batch at 432x240: 4 (default), 2, 1
    for batch in 4 2 1; do
      (export PROPAINTER_WIRE_WINDOW_BATCH=$batch; run3 "ours_432x240x80_fp16_batch${batch}_$round" 432 240 80 --precision fp16)
    done
  done
  reference ref_432x240x80 432 240 80
  against_ref 1280 720 80
  against_ref 1920 1080 50
  run3 ours_432x240x80_fp16_keep 432 240 80 --precision fp16 --keep-output /tmp/keep_432_fp16
  run3 ours_432x240x80_fp32 432 240 80 --precision fp32 --keep-output /tmp/keep_432_fp32
  $PY benchmarks/compare.py /tmp/keep_432_fp16 /tmp/keep_432_fp32 "$CLIPS/432x240x80/masks" \
    > "$OUT/psnr_432_fp16_vs_fp32.json"; cat "$OUT/psnr_432_fp16_vs_fp32.json"
fi

if [ "$PHASE" = mem8 ]; then  # eighth session: what is alive at the peak, 432x240 (windows batched by 4) and 720p
  weights
  for size in "432 240" "1280 720"; do
    set -- $size
    timeout 200 $PY benchmarks/memory_peak.py --width "$1" --height "$2" --frames 80 --source "$BMX" --top 12 \
      > "$OUT/memory_peak_${1}x80.json" 2> "$OUT/memory_peak_${1}x80.err"
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['peak_gib'], d.get('peak_stage'), [(t['mib'], t['count'], t['where']) for t in d['top'][:8]])" "$OUT/memory_peak_${1}x80.json"
  done
fi

if [ "$PHASE" = final12 ]; then  # eighth session: windows two a batch (default); decoder channels-last A/B
  weights
  smoke || exit 1
  gpu_tests 240 tests/test_batching.py tests/test_gpu_speedups.py tests/test_raft.py tests/test_flow_completion.py
  run3 warmup_432x240x80_fp16 432 240 80 --precision fp16
  against_ref 432 240 80
  decoder_cl=raft_update,flow_completion,inpainter_decoder  # the default parts, and the inpainter's decoder
  for size in "1280 720 80" "1920 1080 50"; do
    set -- $size
    run3 "ours_${1}x${2}x${3}_fp16" "$1" "$2" "$3" --precision fp16
    (export PROPAINTER_WIRE_CHANNELS_LAST=$decoder_cl; run3 "declast_${1}x${2}x${3}_fp16" "$1" "$2" "$3" --precision fp16)
    reference "ref_${1}x${2}x${3}" "$1" "$2" "$3"
    (export PROPAINTER_WIRE_CHANNELS_LAST=$decoder_cl; run3 "declast_${1}x${2}x${3}_fp16_b" "$1" "$2" "$3" --precision fp16)
    run3 "ours_${1}x${2}x${3}_fp16_b" "$1" "$2" "$3" --precision fp16
  done
fi

if [ "$PHASE" = final13 ]; then  # eighth session, closing figures: the final code against the reference
  weights
  smoke || exit 1
  gpu_tests 200 tests/test_batching.py tests/test_gpu_speedups.py tests/test_raft.py tests/test_flow_completion.py \
    tests/test_inpainter.py tests/test_transfer.py
  PYTHONPATH=src timeout 120 $PY -m propainter_wire doctor --json > "$OUT/doctor.json" 2> /dev/null; echo "doctor exit $?"
  run3 warmup_432x240x80_fp16 432 240 80 --precision fp16
  against_ref 432 240 80
  against_ref 1280 720 80
  run3 ours_1280x720x240_fp16 1280 720 240 --precision fp16
  against_ref 1920 1080 50
  run3 ours_1280x720x80_fp16_keep 1280 720 80 --precision fp16 --keep-output /tmp/keep_720_fp16
  run3 ours_1280x720x80_fp32 1280 720 80 --precision fp32 --keep-output /tmp/keep_720_fp32
  $PY benchmarks/compare.py /tmp/keep_720_fp16 /tmp/keep_720_fp32 "$CLIPS/1280x720x80/masks" \
    > "$OUT/psnr_720_fp16_vs_fp32.json"; cat "$OUT/psnr_720_fp16_vs_fp32.json"
fi

if [ "$PHASE" = mid8 ]; then  # eighth session: 864x480, where the batching defaults end: batched against apart
  weights
  run3 warmup_864x480x80_fp16 864 480 80 --precision fp16
  for round in a b; do
    run3 "ours_864x480x80_fp16_$round" 864 480 80 --precision fp16
    (export PROPAINTER_WIRE_WINDOW_BATCH=1 PROPAINTER_WIRE_BATCH_DIRECTIONS=0
     run3 "apart_864x480x80_fp16_$round" 864 480 80 --precision fp16)
  done
  reference ref_864x480x80 864 480 80
fi
