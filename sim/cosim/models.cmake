# The co-simulation's verilated models (sim/cosim/CMakeLists.txt: FPQVAR_COSIM_MODELS selects the set).
# Pair ids (PAIR): 0 e2m1 x e2m1, 1 dfq-e1m2-e2m1 x e2m1, 3 int8 x int8, 4 int4 x int4 (fpqvar_pairs.svh). Quantizer formats (FMT, NEG_FMT): 0 e2m1,
# 1 e1m2, 2 e2m3; ROUNDING 1 = ties toward +inf, the FPQVAR recipes' activation rounding.

# ---- ci: the designs of tests/fixtures/cosim (2 x 2 PEs of 16 lanes, one row per transfer; 16-lane quantizer;
# 4-lane Hadamard unit) under the fpqvar-w4a4 recipe ----
fpqvar_cosim_model(pe_array cosim_pe_array_e2m1_2x2_g16_d1 PARAMS PAIR=0 R=2 C=2 G=16 DRAIN_W=1)
fpqvar_cosim_model(pe_array cosim_pe_array_dfq_2x2_g16_d1 PARAMS PAIR=1 R=2 C=2 G=16 DRAIN_W=1)
fpqvar_cosim_model(pe cosim_pe_e2m1_g16 PARAMS PAIR=0 G=16)
fpqvar_cosim_model(pe cosim_pe_dfq_g16 PARAMS PAIR=1 G=16)
fpqvar_cosim_model(mul cosim_mul_e2m1 PARAMS PAIR=0)
fpqvar_cosim_model(mul cosim_mul_dfq PARAMS PAIR=1)
fpqvar_cosim_model(quantizer cosim_quantizer_e2m1_up_l16 PARAMS FMT=0 ROUNDING=1 L=16 GROUP=128)
fpqvar_cosim_model(quantizer cosim_quantizer_dfq_up_l16 PARAMS FMT=0 DFQ=1 NEG_FMT=1 ROUNDING=1 L=16 GROUP=128)
fpqvar_cosim_model(hadamard cosim_hadamard_b128_l4 PARAMS BLOCK=128 LANES=4)
fpqvar_cosim_model(accumulate cosim_accumulate_f2 PARAMS FRAC_BITS=2 DFQ=0)
fpqvar_cosim_model(accumulate cosim_accumulate_dfq_f3 PARAMS FRAC_BITS=3 DFQ=1)
# The integer baseline (tests/fixtures/cosim/tiny-int8.json under int8-rtn and int4-rtn): the same 2 x 2 array of
# 16-lane PEs with INT8 and INT4 multipliers (pe.v's integer pairs; the DSP58 lanes of vck190-int8 compute the same
# products), their PEs, and the accumulate unit of integer sums (FRAC_BITS 0). No integer quantizer model: the
# integer designs' quantizer (rtl/quantizer/int_quantizer.v) has no co-simulation engine.
fpqvar_cosim_model(pe_array cosim_pe_array_int8_2x2_g16_d1 PARAMS PAIR=3 R=2 C=2 G=16 DRAIN_W=1)
fpqvar_cosim_model(pe_array cosim_pe_array_int4_2x2_g16_d1 PARAMS PAIR=4 R=2 C=2 G=16 DRAIN_W=1)
fpqvar_cosim_model(pe cosim_pe_int8_g16 PARAMS PAIR=3 G=16)
fpqvar_cosim_model(pe cosim_pe_int4_g16 PARAMS PAIR=4 G=16)
fpqvar_cosim_model(accumulate cosim_accumulate_f0 PARAMS FRAC_BITS=0 DFQ=0)

# ---- vck190-fpqvar-w4a4: the shipped design's own parameters (8 x 22 PEs of 32 lanes, two rows per transfer, so four
# transfers per group: the 4 x 4 blocks below drain one row per transfer, four per group; 32-lane quantizer; 16
# cycles per Hadamard block = 8 lanes) ----
if(FPQVAR_COSIM_MODELS STREQUAL "vck190-fpqvar-w4a4")
  fpqvar_cosim_model(pe_array cosim_pe_array_e2m1_4x4_g32_d1 PARAMS PAIR=0 R=4 C=4 G=32 DRAIN_W=1 OPT_FAST -O1 JOBS 2
    ARGS --output-split 20000)
  fpqvar_cosim_model(pe_array cosim_pe_array_dfq_4x4_g32_d1 PARAMS PAIR=1 R=4 C=4 G=32 DRAIN_W=1 OPT_FAST -O1 JOBS 2
    ARGS --output-split 20000)
  fpqvar_cosim_model(quantizer cosim_quantizer_e2m1_up_l32 PARAMS FMT=0 ROUNDING=1 L=32 GROUP=128)
  fpqvar_cosim_model(quantizer cosim_quantizer_dfq_up_l32 PARAMS FMT=0 DFQ=1 NEG_FMT=1 ROUNDING=1 L=32 GROUP=128)
  fpqvar_cosim_model(hadamard cosim_hadamard_b128_l8 PARAMS BLOCK=128 LANES=8)
elseif(NOT FPQVAR_COSIM_MODELS STREQUAL "ci")
  message(FATAL_ERROR "FPQVAR_COSIM_MODELS must be ci or vck190-fpqvar-w4a4, got '${FPQVAR_COSIM_MODELS}'")
endif()
