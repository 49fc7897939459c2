// lut_quantizer_ep: a threshold T = p * 2^texp of rtl/quantizer/lut_quantizer.v (p = k * sig with k >= 1 and sig in
// [2^10, 2^11): p >= 2^10, its leading one at bit 10 .. PW-1) as EP, its FP16 pattern on a grid two bits finer than
// FP16's, truncated: {overflow, sticky, field (5), mantissa (12)}.
// Normal (T >= 2^-14): field = e + 15 for T = 1.m * 2^e, the 12 mantissa bits m below the leading one, sticky = any
// further bit of p; T >= 2^16: overflow. Subnormal: field 0, EP = floor(T * 2^26) (the pattern in units of 2^-26),
// sticky = the rest. Then EP >> 2 is the FP16 pattern of T rounded down, and "EP's two low bits or sticky" says
// whether T lies above it. Example: p = 5175 (5 * 1035), texp = -12: T = 1.26342.. = 1.0100001101_11b * 2^0 ->
// field 15, m = 0100_0011_0111, sticky 0: EP >> 2 = 0x3D0D (1.2626953125), low bits 11 -> T lies above it.
// The shifts are written over the ranges they take (PW - 10 leading-one positions; a subnormal shift of 1 .. 13),
// which synthesis maps to small multiplexers instead of full barrel shifters. Purely combinational.
module lut_quantizer_ep #(
    parameter integer PW = 16  // p's width (<= 20)
) (
    input  wire [PW-1:0]     p,
    input  wire signed [9:0] texp,
    output wire [18:0]       ep
);
  localparam integer NPOS = PW - 10;  // possible leading-one positions 10 .. PW-1
  // lz = PW-1 - (leading one's position), 0 .. NPOS-1; a = p << lz: the leading one at PW-1
  reg [4:0] lz;
  reg [PW-1:0] a;
  integer i;
  always @* begin
    lz = 5'd0;
    for (i = 10; i < PW; i = i + 1)
      if (p[i]) lz = PW[4:0] - 5'd1 - i[4:0];
    a = p;
    for (i = 1; i < NPOS; i = i + 1)
      if (lz == i[4:0]) a = p << i;
  end
  wire signed [9:0] ev = texp + $signed({5'd0, PW[4:0]}) - 10'sd1 - $signed({5'd0, lz});
  wire [PW+10:0] frac_full = {a[PW-2:0], 12'd0};           // the bits below the leading one, then zeros
  wire [11:0] m = frac_full[PW+10 -: 12];
  wire rest = (frac_full[PW-2:0] != {(PW-1){1'b0}});
  wire normal = ev >= -10'sd14;
  wire over = ev > 10'sd15;
  wire signed [9:0] field = ev + 10'sd15;
  // subnormal: {1, m} >> (-14 - ev) (1 .. 13; more shifts everything out), the bits shifted out into sticky
  wire signed [9:0] ss_s = -10'sd14 - ev;
  wire [12:0] sig13 = {1'b1, m};
  reg [11:0] sub;
  reg lost;
  always @* begin
    sub = 12'd0;
    lost = 1'b1;
    for (i = 1; i <= 13; i = i + 1)
      if (ss_s == i[9:0]) begin
        sub = sig13[12:1] >> (i - 1);
        lost = (sig13 & ((13'd1 << i) - 13'd1)) != 13'd0;
      end
  end
  assign ep = over ? {1'b1, 18'd0} :
              normal ? {1'b0, rest, field[4:0], m} : {1'b0, rest || lost, 5'd0, sub};
  wire unused_ep = ^{field[9:5], a[PW-1]};
endmodule
