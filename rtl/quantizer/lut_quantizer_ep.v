// lut_quantizer_ep: a threshold T = p * 2^texp (p > 0, an exact integer) of rtl/quantizer/lut_quantizer.v as EP, its
// FP16 pattern on a grid two bits finer than FP16's, truncated: {overflow, sticky, field (5), mantissa (12)}.
// Normal (T >= 2^-14): field = e + 15 for T = 1.m * 2^e, the 12 mantissa bits m below the leading one, sticky = any
// further bit of p; T >= 2^16: overflow. Subnormal: field 0, EP = floor(T * 2^26) (the pattern in units of 2^-26),
// sticky = the rest. Then EP >> 2 is the FP16 pattern of T rounded down, and "EP's two low bits or sticky" says
// whether T lies above it. Example: p = 5175 (5 * 1035), texp = -12: T = 1.26342.. = 1.0100001101_11b * 2^0 ->
// field 15, m = 0100_0011_0111, sticky 0: EP >> 2 = 0x3D0D (1.2626953125), low bits 11 -> T lies above it.
// Purely combinational.
module lut_quantizer_ep #(
    parameter integer PW = 16  // p's width
) (
    input  wire [PW-1:0]     p,
    input  wire signed [9:0] texp,
    output wire [18:0]       ep
);
  reg [4:0] lz;
  integer i;
  always @* begin
    lz = 5'd0;
    for (i = 0; i < PW; i = i + 1)
      if (p[i]) lz = PW[4:0] - 5'd1 - i[4:0];
  end
  wire [PW-1:0] a = p << lz;                               // the leading one at PW-1
  wire signed [9:0] ev = texp + $signed({5'd0, PW[4:0]}) - 10'sd1 - $signed({5'd0, lz});
  wire [PW+10:0] frac_full = {a[PW-2:0], 12'd0};           // the bits below the leading one, then zeros
  wire [11:0] m = frac_full[PW+10 -: 12];
  wire rest = (frac_full[PW-2:0] != {(PW-1){1'b0}});
  wire normal = ev >= -10'sd14;
  wire over = ev > 10'sd15;
  wire signed [9:0] field = ev + 10'sd15;
  // subnormal: {1, m} >> (-14 - ev), the bits shifted out into sticky
  wire signed [9:0] ss_s = -10'sd14 - ev;
  wire [3:0] ss = (ss_s > 10'sd13) ? 4'd13 : ss_s[3:0];
  wire [12:0] sig13 = {1'b1, m};
  wire [12:0] sub = sig13 >> ss;
  wire lost = (sig13 & ((13'd1 << ss) - 13'd1)) != 13'd0;
  assign ep = over ? {1'b1, 18'd0} :
              normal ? {1'b0, rest, field[4:0], m} : {1'b0, rest || lost, 5'd0, sub[11:0]};
  wire unused_ep = ^{field[9:5], sub[12], ss_s[9:4], a[PW-1]};
endmodule
