// lut_quantizer_ep: a threshold T = p * 2^texp of rtl/quantizer/lut_quantizer.v (p = k * sig with k >= 1 and sig in
// [2^10, 2^11): p >= 2^10, its leading one at bit 10 .. PW-1) as EP, its FP16 pattern on a grid two bits finer than
// FP16's, truncated: {overflow, sticky, field (5), mantissa (12)}.
// Normal (T >= 2^-14): field = e + 15 for T = 1.m * 2^e, the 12 mantissa bits m below the leading one, sticky = any
// further bit of p; T >= 2^16: overflow. Subnormal: field 0, EP = floor(T * 2^26) (the pattern in units of 2^-26),
// sticky = the rest. Then EP >> 2 is the FP16 pattern of T rounded down, and "EP's two low bits or sticky" says
// whether T lies above it. Example: p = 5175 (5 * 1035), texp = -12: T = 1.26342.. = 1.0100001101_11b * 2^0 ->
// field 15, m = 0100_0011_0111, sticky 0: EP >> 2 = 0x3D0D (1.2626953125), low bits 11 -> T lies above it.
// The normalization is written over the PW - 10 leading-one positions p can have; the subnormal shift (1 .. 13) is
// logarithmic. Purely combinational.
module lut_quantizer_ep #(
    parameter integer PW = 16  // p's width (<= 20)
) (
    input  wire [PW-1:0]     p,
    input  wire signed [9:0] texp,
    output wire [18:0]       ep
);
  localparam integer NPOS = PW - 10;  // possible leading-one positions 10 .. PW-1
  // lz = PW-1 - (leading one's position), 0 .. NPOS-1; a = p << lz: the leading one at PW-1 (written over the
  // NPOS shifts that occur: yosys maps this smaller than a logarithmic shifter here, 179 against 220 LUT for the
  // whole module at PW = 16)
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
  // subnormal: {1, m} >> (-14 - ev), the bits shifted out into sticky: a logarithmic shifter (by 8, 4, 2, 1) over
  // 13 bits; a shift of 13 or more leaves 0 (and the leading one in sticky).
  wire signed [9:0] ss_s = -10'sd14 - ev;
  wire [3:0] ss = (ss_s > 10'sd13) ? 4'd13 : ss_s[3:0];
  wire [12:0] s0 = {1'b1, m};
  wire [12:0] s1 = ss[3] ? {8'd0, s0[12:8]} : s0;
  wire l1 = ss[3] && (s0[7:0] != 8'd0);
  wire [12:0] s2 = ss[2] ? {4'd0, s1[12:4]} : s1;
  wire l2 = ss[2] && (s1[3:0] != 4'd0);
  wire [12:0] s3 = ss[1] ? {2'd0, s2[12:2]} : s2;
  wire l3 = ss[1] && (s2[1:0] != 2'd0);
  wire [12:0] s4 = ss[0] ? {1'd0, s3[12:1]} : s3;
  wire l4 = ss[0] && s3[0];
  wire [11:0] sub = s4[11:0];
  wire lost = l1 || l2 || l3 || l4;
  assign ep = over ? {1'b1, 18'd0} :
              normal ? {1'b0, rest, field[4:0], m} : {1'b0, rest || lost, 5'd0, sub};
  wire unused_ep = ^{field[9:5], a[PW-1], s4[12], ss_s[9:4]};
endmodule
